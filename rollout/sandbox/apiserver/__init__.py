"""The sandbox Kubernetes API server: an in-memory store with the real server's semantics, served over
HTTP with discovery, OpenAPI, tables, watches and fault injection (see `store` and `server`)."""

from rollout.sandbox.apiserver.faults import Fault, FaultInjector
from rollout.sandbox.apiserver.resources import PrinterColumn, ResourceRegistry, ResourceSpec
from rollout.sandbox.apiserver.server import SandboxApiServer
from rollout.sandbox.apiserver.store import MemoryStore

__all__ = [
    "Fault",
    "FaultInjector",
    "MemoryStore",
    "PrinterColumn",
    "ResourceRegistry",
    "ResourceSpec",
    "SandboxApiServer",
]
