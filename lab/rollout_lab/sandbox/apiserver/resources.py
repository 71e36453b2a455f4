"""What the server knows about each resource it serves: the `ResourceSpec` (names, schema, printer columns,
field selectors, validation) and the `ResourceRegistry` that discovery, REST routing and the store share."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from rollout_lab.sandbox.store_api import ApiError, Obj, ResourceType

Cause = dict[str, str]
# Built-in validation of a whole object (old is None on create): returns the field errors found.
Validator = Callable[[Obj, Obj | None], list[Cause]]


@dataclass(frozen=True)
class PrinterColumn:
    """One `kubectl get` column (a CRD's additionalPrinterColumns entry)."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ResourceSpec:
    rt: ResourceType
    uses_generation: bool = True
    # The structural openAPIV3Schema of the whole object; None means no schema validation or pruning.
    schema: Obj | None = None
    printer_columns: tuple[PrinterColumn, ...] = ()
    categories: tuple[str, ...] = ()
    # Field selector labels beyond metadata.name/metadata.namespace: label -> path of keys in the object.
    field_paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Built-in kinds accept strategic-merge patches; custom resources (from a CRD) answer 415.
    builtin: bool = True
    validate: Validator | None = None
    # Server-side defaults applied before validation on create and update (e.g. a Namespace's phase).
    prepare: Callable[[Obj, Obj | None], None] | None = None
    # Names a create or update may not use (e.g. Knative forbids some); None means DNS-1123 subdomain.
    name_rule: str = "subdomain"
    verbs: tuple[str, ...] = (
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    )

    @property
    def supported_fields(self) -> frozenset[str]:
        return frozenset(("metadata.name", "metadata.namespace", *self.field_paths))


class ResourceRegistry:
    """The served resources, one version each, keyed by group/plural; listeners hear of changes."""

    def __init__(self) -> None:
        self._specs: dict[str, ResourceSpec] = {}
        self._listeners: list[Callable[[], None]] = []
        self.revision = 0

    def add(self, spec: ResourceSpec) -> None:
        self._specs[spec.rt.group_resource] = spec
        self._changed()

    def remove(self, group_resource: str) -> ResourceSpec | None:
        spec = self._specs.pop(group_resource, None)
        if spec is not None:
            self._changed()
        return spec

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        self.revision += 1
        for listener in list(self._listeners):
            listener()

    def spec(self, rt: ResourceType) -> ResourceSpec:
        """The spec registered for `rt`, or a default one built from `rt` alone."""
        found = self._specs.get(rt.group_resource)
        return found if found is not None else ResourceSpec(rt)

    def get(self, group_resource: str) -> ResourceSpec | None:
        return self._specs.get(group_resource)

    def lookup(self, group: str, version: str, plural: str) -> ResourceSpec:
        """The spec served at /apis/{group}/{version}/{plural}; raises 404 NotFound otherwise."""
        spec = self._specs.get(f"{plural}.{group}" if group else plural)
        if spec is None or spec.rt.version != version:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return spec

    def find_kind(self, api_version: str, kind: str) -> ResourceSpec | None:
        for spec in self._specs.values():
            if spec.rt.api_version == api_version and spec.rt.kind == kind:
                return spec
        return None

    def __iter__(self) -> Iterator[ResourceSpec]:
        return iter(list(self._specs.values()))

    def group_versions(self) -> dict[str, list[ResourceSpec]]:
        """Served specs by group/version ("v1" for core), groups in registration order."""
        out: dict[str, list[ResourceSpec]] = {}
        for spec in self._specs.values():
            out.setdefault(spec.rt.api_version, []).append(spec)
        return out
