"""What the user-facing commands (`rollout status`, `promote`, ...) need from a cluster: a client from the
kubeconfig, the Rollouts of one target, recent Events, and writing a manual request. These commands act as the
person running them (their kubeconfig and RBAC), not as the controller, so they use kubernetes-asyncio directly
rather than the controller's fenced client."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from kubernetes_asyncio import client as kclient
from kubernetes_asyncio import config as kconfig
from kubernetes_asyncio.client.rest import ApiException

from rollout.api.common import GROUP, POLICY_LABEL, VERSION, format_time
from rollout.api.load import parse_rollout
from rollout.api.rollout import RequestAction, Rollout
from rollout.controller.rollouts import TARGET_KIND_LABEL, TARGET_LABEL, active, latest, order_key


class CliError(Exception):
    """A problem to report to the user (exit code 1), with what to do about it."""


@dataclass(frozen=True)
class Target:
    namespace: str
    name: str
    kind: str = "Service"  # or Route


def first_line(err: BaseException) -> str:
    """An exception in one line for a one-line error (YAML and the Kubernetes library write several)."""
    text = str(err).strip().splitlines()
    return text[0][:200].rstrip(".") if text else type(err).__name__


def check_kubeconfig(kubeconfig: str | None) -> None:
    if kubeconfig is not None and not os.path.isfile(kubeconfig):
        raise CliError(f"--kubeconfig {kubeconfig}: no such file")


@asynccontextmanager
async def api_client(kubeconfig: str | None, context: str | None) -> AsyncIterator[kclient.ApiClient]:
    configuration = kclient.Configuration()
    # the library logs "Config not found" itself before raising: the one line below says it
    logging.getLogger("kubernetes_asyncio.config.kube_config").setLevel(logging.ERROR)
    try:
        await kconfig.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except yaml.YAMLError as exc:
        raise CliError(f"the kubeconfig is not YAML ({first_line(exc)}); pass --kubeconfig FILE") from None
    except (kconfig.ConfigException, FileNotFoundError) as exc:
        raise CliError(f"cannot load the kubeconfig ({exc}); pass --kubeconfig or set KUBECONFIG") from None
    api = kclient.ApiClient(configuration)
    try:
        yield api
    finally:
        await api.close()


async def current_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the kubeconfig's context (the one given, else the current one), else "default"."""
    try:
        contexts, current = kconfig.list_kube_config_contexts(config_file=kubeconfig)
    except (kconfig.ConfigException, OSError, yaml.YAMLError):
        return "default"  # loading the client says what is wrong with the kubeconfig
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    ns = (chosen or {}).get("context", {}).get("namespace")
    return str(ns) if ns else "default"


def _explain(exc: ApiException) -> str:
    body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
    return f"the API server answered {exc.status} {exc.reason}: {body[:300]}"


async def _list_rollouts(
    api: kclient.ApiClient, namespace: str | None, selector: str = ""
) -> list[dict[str, Any]]:
    """The stored Rollouts of `namespace` (None: of every namespace) matching `selector`, or a CliError."""
    objects = kclient.CustomObjectsApi(api)
    query: dict[str, Any] = {"label_selector": selector} if selector else {}
    try:
        if namespace:
            listed: dict[str, Any] = await objects.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "rollouts", **query
            )
        else:
            listed = await objects.list_cluster_custom_object(GROUP, VERSION, "rollouts", **query)
    except ApiException as exc:
        where = f"in {namespace}" if namespace else "in any namespace"
        raise CliError(f"cannot list Rollouts {where}: {_explain(exc)}") from None
    except OSError as exc:
        raise CliError(f"cannot reach the API server: {exc}") from None
    items: list[dict[str, Any]] = listed.get("items", [])
    return items


def _parsed(items: list[dict[str, Any]]) -> list[Rollout]:
    """The objects that parse (unreadable ones are skipped, never fatal)."""
    return [r for r in (parse_rollout(item)[0] for item in items) if r is not None]


async def target_rollouts(api: kclient.ApiClient, target: Target) -> list[Rollout]:
    """The target's Rollouts, oldest first (unreadable objects are skipped, never fatal)."""
    items = await _list_rollouts(api, target.namespace, f"{TARGET_LABEL}={target.name}")
    kind = [
        i
        for i in items
        if i.get("metadata", {}).get("labels", {}).get(TARGET_KIND_LABEL, "Service") == target.kind
    ]
    return sorted(_parsed(kind), key=order_key)


async def all_rollouts(api: kclient.ApiClient, namespace: str | None) -> list[Rollout]:
    """Every Rollout of `namespace` (None: of every namespace), oldest first per target."""
    found = _parsed(await _list_rollouts(api, namespace))
    return sorted(found, key=lambda r: (r.metadata.namespace or "", r.spec.target.name, order_key(r)))


def run_command(coro: Any, kubeconfig: str | None) -> int:
    """Run a command's coroutine: a kubeconfig that is not there, or any CliError, is one line on stderr
    and exit 1."""
    try:
        check_kubeconfig(kubeconfig)
    except CliError as exc:
        coro.close()
        print(f"rollout: {exc}", file=sys.stderr)
        return 1
    try:
        result: int = asyncio.run(coro)
    except CliError as exc:
        print(f"rollout: {exc}", file=sys.stderr)
        return 1
    return result


async def why_no_rollout(api: kclient.ApiClient, target: Target, what: str) -> str:
    """Why a target has no Rollout to show or act on, as precisely as the API server lets us say: the
    namespace or the target does not exist, it does not opt in, or the controller has not acted (yet)."""
    try:
        await kclient.CoreV1Api(api).read_namespace(target.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return f"namespace {target.namespace} does not exist (pass -n NAMESPACE)"
    except OSError as exc:
        return f"cannot reach the API server: {exc}"
    plural = "routes" if target.kind == "Route" else "services"
    objects = kclient.CustomObjectsApi(api)
    try:
        obj = await objects.get_namespaced_custom_object(
            "serving.knative.dev", "v1", target.namespace, plural, target.name
        )
    except ApiException as exc:
        if exc.status == 404:
            return f"{target.kind} {target.namespace}/{target.name} not found (`kubectl get ksvc -n {target.namespace}`)"
        obj = {}
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if obj and POLICY_LABEL not in labels:
        return (
            f"{target.kind} {target.namespace}/{target.name} does not opt in: label it "
            f"{POLICY_LABEL}=<policy> (`kubectl label ksvc {target.name} {POLICY_LABEL}=standard-canary`)"
        )
    return (
        f"{target.kind} {target.namespace}/{target.name} has no {what}; is the controller running? "
        f"(`kubectl get rollouts -n {target.namespace}`)"
    )


async def latest_created(api: kclient.ApiClient, target: Target) -> str | None:
    """The newest revision Knative created for an opted-in Service (its status), else None."""
    if target.kind != "Service":
        return None
    try:
        obj = await kclient.CustomObjectsApi(api).get_namespaced_custom_object(
            "serving.knative.dev", "v1", target.namespace, "services", target.name
        )
    except (ApiException, OSError):
        return None
    if POLICY_LABEL not in ((obj.get("metadata") or {}).get("labels") or {}):
        return None  # not opted in: no rollout will start for it
    name = (obj.get("status") or {}).get("latestCreatedRevisionName")
    return str(name) if name else None


def pick(rollouts: list[Rollout], action: RequestAction | None) -> Rollout | None:
    """The rollout a command acts on: the running one; for `retry` and `status`, else the latest."""
    running = active(rollouts)
    if running is not None:
        return running
    if action in (None, RequestAction.RETRY, RequestAction.UNDO):
        return latest(rollouts)
    return None


async def recent_events(
    api: kclient.ApiClient, namespace: str, names: set[str], limit: int = 10
) -> list[Any]:
    """Events about the given objects, newest last."""
    core = kclient.CoreV1Api(api)
    try:
        events = await core.list_namespaced_event(namespace)
    except (ApiException, OSError):
        return []
    mine = [e for e in events.items if e.involved_object is not None and e.involved_object.name in names]

    def when(e: Any) -> datetime:
        t = e.last_timestamp or e.event_time or e.first_timestamp or e.metadata.creation_timestamp
        return t if isinstance(t, datetime) else datetime.min.replace(tzinfo=UTC)

    return sorted(mine, key=when)[-limit:]


def local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "rollout-cli"


async def requester(api: kclient.ApiClient) -> str:
    """Who is asking, as the API server authenticated this kubeconfig's credentials (a SelfSubjectReview,
    authentication.k8s.io/v1, GA in Kubernetes 1.28). Where the API server cannot say, the local user name,
    marked unverified."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        answer = await api.call_api(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            "POST",
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=body,
            response_types_map={201: "object", 200: "object"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
        )
    except (ApiException, OSError):
        answer = None
    status = answer.get("status") if isinstance(answer, dict) else None
    name = ((status or {}).get("userInfo") or {}).get("username")
    return str(name) if name else f"{local_user()} (unverified)"


async def revision_problem(api: kclient.ApiClient, target: Target, name: str) -> str | None:
    """Why revision `name` cannot take the target's traffic (missing, of another Service, not Ready), or
    None when it can."""
    try:
        rev = await kclient.CustomObjectsApi(api).get_namespaced_custom_object(
            "serving.knative.dev", "v1", target.namespace, "revisions", name
        )
    except ApiException as exc:
        return "no such revision" if exc.status == 404 else _explain(exc)
    except OSError as exc:
        return f"cannot reach the API server: {exc}"
    labels = (rev.get("metadata") or {}).get("labels") or {}
    owner = labels.get("serving.knative.dev/service") or labels.get("serving.knative.dev/configuration")
    if owner != target.name:
        return f"it belongs to {owner or 'no Service'}, not {target.name}"
    conditions = (rev.get("status") or {}).get("conditions") or []
    if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
        return "it is not Ready"
    return None


async def send_request(
    api: kclient.ApiClient,
    rollout: Rollout,
    action: RequestAction,
    reason: str,
    who: str,
    revision: str | None = None,
) -> str:
    """Record the request on the Rollout (a merge patch of spec.request, guarded by resourceVersion);
    returns its id. The controller acts on each id once and acknowledges it in status.handledRequest."""
    request_id = uuid.uuid4().hex[:16]
    meta = rollout.metadata
    body: dict[str, Any] = {
        "spec": {
            "request": {
                "action": action.value,
                "id": request_id,
                "requestedAt": format_time(datetime.now(UTC)),
                "requestedBy": who,
                "reason": reason,
                **({"revision": revision} if revision else {}),
            }
        },
    }
    resource_version = (meta.model_extra or {}).get("resourceVersion")
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    try:
        await api.call_api(
            f"/apis/{GROUP}/{VERSION}/namespaces/{meta.namespace}/rollouts/{meta.name}",
            "PATCH",
            header_params={"Content-Type": "application/merge-patch+json", "Accept": "application/json"},
            body=body,
            response_types_map={200: "object"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
        )
    except ApiException as exc:
        if exc.status == 409:
            raise CliError(
                f"Rollout {meta.name} changed while the request was sent; run the command again"
            ) from None
        raise CliError(f"cannot record the request on Rollout {meta.name}: {_explain(exc)}") from None
    return request_id


async def read_rollout(api: kclient.ApiClient, namespace: str, name: str) -> Rollout | None:
    objects = kclient.CustomObjectsApi(api)
    try:
        obj = await objects.get_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", name)
    except ApiException:
        return None
    rollout, _ = parse_rollout(obj)
    return rollout
