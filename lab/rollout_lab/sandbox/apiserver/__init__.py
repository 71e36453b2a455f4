"""The sandbox Kubernetes API server: an in-memory store with the real server's semantics, served over
plain HTTP on loopback so that unchanged clients (kubernetes-asyncio, kubectl) work against it.

    async with SandboxApiServer() as srv:      # MemoryStore inside; port 0 = any free port
        srv.url, srv.store, srv.faults
        srv.write_kubeconfig(path)

In-process components use the store directly (`rollout_lab.sandbox.store_api.ObjectStore`): `MemoryStore`
(get/list/create/update/delete/watch, `register_admission`, `on_commit`, `expire_events`).

Modules: `store` (semantics), `eventlog` (watch log, watchers), `rest`/`routing`/`paging`/`watch_http`
(HTTP), `discovery`, `openapi`, `tables`/`jsonpath`, `selectors`, `patches`, `schema`/`schema_dsl`
(structural schemas), `crds` (CRD controller), `builtin`/`builtin_schema`, `knative_kinds`/
`knative_schema` (serving.knative.dev, written here and checked against the real CRDs by tests),
`protobuf` (kubectl's typed create bodies), `fieldpaths`/`managedfields` (field ownership), `faults`,
`kubeconfig`, `server`.

Known differences from a real API server (by design or not yet done):
- One served version per resource (a CRD serves its storage version; no conversion).
- managedFields: every create/update/patch (Update) and server-side apply (Apply: conflicts, force,
  pruning of fields a manager stops applying) is recorded, per manager, operation and subresource; a
  request without `fieldManager` is named after its User-Agent. Not modelled: apply's
  `x-kubernetes-list-type=map` item ordering rules, conversion of entries between versions, and the
  upgrade of `kubectl.kubernetes.io/last-applied-configuration` owners to Apply. In-process writers name
  themselves (Knative simulator: `controller`; garbage collector: `kube-controller-manager`; CRD status:
  `kube-apiserver`), others are `sandbox`.
- CEL rules (`x-kubernetes-validations`) run on cel-python, without Kubernetes' CEL library extensions
  (quantity, url, ip, ...); cost limits are not enforced.
- Validation ratcheting (Kubernetes 1.33+, KEP-4008) is modelled as: a field an update left unchanged is not
  validated again, unless a transition rule (`oldSelf`) sits in it; the real server validates everything and
  then drops the errors of unchanged fields, which can differ for rules that span changed and unchanged parts.
- No authorization (RBAC); authentication is an optional bearer token.
- Lists are always served at the newest version (an exact older `resourceVersion` answers 410); continue
  tokens point to snapshots kept for 5 minutes (64 at most).
- Protobuf request bodies are decoded for ConfigMap, Secret and Namespace only; responses are JSON.
- The garbage collector (ownerReferences) and namespace deletion run synchronously inside the write.
"""

from rollout_lab.sandbox.apiserver.faults import Fault, FaultInjector
from rollout_lab.sandbox.apiserver.resources import PrinterColumn, ResourceRegistry, ResourceSpec
from rollout_lab.sandbox.apiserver.server import SandboxApiServer
from rollout_lab.sandbox.apiserver.store import MemoryStore

__all__ = [
    "Fault",
    "FaultInjector",
    "MemoryStore",
    "PrinterColumn",
    "ResourceRegistry",
    "ResourceSpec",
    "SandboxApiServer",
]
