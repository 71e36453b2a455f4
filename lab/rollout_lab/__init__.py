"""knative-rollout-lab: the local lab beside the product — the sandbox (a Kubernetes API server with
Knative Serving's controllers and simulated traffic), the virtual-clock simulator and the demo, with
their `rollout sandbox|simulate|demo` commands. Install it with `pip install 'knative-rollout[sandbox]'`
(in this repository: `pip install -e ./lab`); the controller never imports it."""
