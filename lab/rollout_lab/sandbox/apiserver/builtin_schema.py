"""Compact structural schemas of the built-in kinds we serve: they prune unknown fields (as decoding into
the server's Go types does), type-check fields, and feed `/openapi/v3`."""

from __future__ import annotations

from rollout_lab.sandbox.apiserver.schema_dsl import (
    ANY_OBJECT,
    BOOL,
    STR,
    STRING_MAP,
    STRINGS,
    Schema,
    arr,
    integer,
    obj,
)

OBJECT_REFERENCE = obj(
    apiVersion=STR,
    fieldPath=STR,
    kind=STR,
    name=STR,
    namespace=STR,
    resourceVersion=STR,
    uid=STR,
)
_BYTES_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}}


def _top(**fields: Schema) -> Schema:
    return obj(apiVersion=STR, kind=STR, metadata={"type": "object"}, **fields)


def namespace_schema() -> Schema:
    condition = obj(("status", "type"), lastTransitionTime=STR, message=STR, reason=STR, status=STR, type=STR)
    return _top(
        spec=obj(finalizers=arr(STR, "atomic")),
        status=obj(conditions=arr(condition, "map", ("type",)), phase=STR),
    )


def configmap_schema() -> Schema:
    return _top(binaryData=_BYTES_MAP, data=STRING_MAP, immutable=BOOL)


def secret_schema() -> Schema:
    return _top(data=_BYTES_MAP, immutable=BOOL, stringData=STRING_MAP, type=STR)


def lease_schema() -> Schema:
    return _top(
        spec=obj(
            acquireTime=STR,
            holderIdentity=STR,
            leaseDurationSeconds=integer(),
            leaseTransitions=integer(),
            preferredHolder=STR,
            renewTime=STR,
            strategy=STR,
        )
    )


def _series() -> Schema:
    return obj(count=integer(), lastObservedTime=STR)


def event_schema() -> Schema:
    return _top(
        action=STR,
        count=integer(),
        eventTime=STR,
        firstTimestamp=STR,
        involvedObject=OBJECT_REFERENCE,
        lastTimestamp=STR,
        message=STR,
        reason=STR,
        related=OBJECT_REFERENCE,
        reportingComponent=STR,
        reportingInstance=STR,
        series=_series(),
        source=obj(component=STR, host=STR),
        type=STR,
    )


def event_v1_schema() -> Schema:
    return _top(
        action=STR,
        deprecatedCount=integer(),
        deprecatedFirstTimestamp=STR,
        deprecatedLastTimestamp=STR,
        deprecatedSource=obj(component=STR, host=STR),
        eventTime=STR,
        note=STR,
        reason=STR,
        regarding=OBJECT_REFERENCE,
        related=OBJECT_REFERENCE,
        reportingController=STR,
        reportingInstance=STR,
        series=_series(),
        type=STR,
    )


def crd_schema() -> Schema:
    names = obj(categories=STRINGS, kind=STR, listKind=STR, plural=STR, shortNames=STRINGS, singular=STR)
    version = obj(
        additionalPrinterColumns=arr(ANY_OBJECT),
        deprecated=BOOL,
        deprecationWarning=STR,
        name=STR,
        schema=ANY_OBJECT,
        selectableFields=arr(ANY_OBJECT),
        served=BOOL,
        storage=BOOL,
        subresources=ANY_OBJECT,
    )
    return _top(
        spec=obj(
            conversion=ANY_OBJECT,
            group=STR,
            names=names,
            preserveUnknownFields=BOOL,
            scope=STR,
            versions=arr(version),
        ),
        status=ANY_OBJECT,
    )
