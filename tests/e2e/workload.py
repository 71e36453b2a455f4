"""What the end-to-end rollouts deploy: a small HTTP server whose failure rate and latency are set by
environment variables, run by the controller's own image (it has Python; nothing else to pull), and the
RolloutPolicy that judges it."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

# Answers every request after LATENCY_MS milliseconds, with a 500 for a share ERROR_RATE of them; listens on
# $PORT as Knative asks. CRASH=1 exits at once (a revision that never becomes Ready).
SERVER = """
import os, random, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
if os.environ.get("CRASH") == "1":
    sys.exit("crashing on purpose (CRASH=1)")
ERROR_RATE = float(os.environ.get("ERROR_RATE", "0"))
LATENCY = float(os.environ.get("LATENCY_MS", "5")) / 1000
VERSION = os.environ.get("VERSION", "?")
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(LATENCY)
        failed = random.random() < ERROR_RATE
        body = (f"version {VERSION} " + ("error" if failed else "ok") + "\\n").encode()
        self.send_response(500 if failed else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
"""


def service(
    name: str,
    namespace: str,
    image: str,
    *,
    policy: str | None,
    version: str,
    error_rate: float = 0.0,
    latency_ms: float = 5.0,
    crash: bool = False,
    min_scale: int = 1,
) -> Obj:
    env = [
        {"name": "VERSION", "value": version},
        {"name": "ERROR_RATE", "value": str(error_rate)},
        {"name": "LATENCY_MS", "value": str(latency_ms)},
    ]
    if crash:
        env.append({"name": "CRASH", "value": "1"})
    labels = {"knrollout.dev/policy": policy} if policy else {}
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        # one pod per revision at least, so that the canary has a queue-proxy to scrape
                        "autoscaling.knative.dev/min-scale": str(min_scale),
                    }
                },
                "spec": {
                    "containers": [
                        {
                            "image": image,
                            "command": ["python", "-c", SERVER],
                            "env": env,
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": {"httpGet": {"path": "/"}, "periodSeconds": 1},
                        }
                    ]
                },
            }
        },
    }


STEPS = [20, 50]


def policy(name: str, namespace: str, dialect: str, **overrides: Any) -> Obj:
    """A fast policy for a test: two steps of 20 s, analysis every 10 s (Prometheus scrapes every 5 s)."""
    spec: Obj = {
        "strategy": {"canary": {"steps": [{"weight": w, "bake": "20s"} for w in STEPS]}},
        "analysis": {
            "interval": "10s",
            "minRequests": 20,
            "noData": "wait",
            "failureLimit": {"consecutive": 2, "total": 3},
            "metrics": [
                {"name": "error-rate", "builtin": "errorRate", "threshold": {"max": 0.05}, "compare": {}},
                {"name": "latency", "builtin": "latency", "quantile": 0.9, "threshold": {"max": 0.2}},
            ],
        },
        "metricSource": {"dialect": dialect},
        "deadlines": {"candidateReady": "90s", "rollout": "15m"},
        "historyLimit": 5,
    }
    spec.update(overrides)
    return {
        "apiVersion": "knrollout.dev/v1alpha1",
        "kind": "RolloutPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
