"""Structural OpenAPI v3 schemas of Knative Serving's v1 kinds, written in our own words.

They list the fields Knative's CRDs declare (the pod-spec subset Knative allows, traffic targets, status)
with the same types, required fields, defaults and unknown-field rules, so that the sandbox validates and
prunes like a cluster with Knative installed. A test compares them with the real CRDs.
"""

from __future__ import annotations

from rollout_lab.sandbox.apiserver.schema_dsl import (
    ANY_OBJECT,
    BOOL,
    INT_OR_STRING,
    QUANTITY_SCHEMA,
    STR,
    STRING_MAP,
    STRINGS,
    Schema,
    arr,
    atomic,
    integer,
    obj,
    string,
)


def _probe() -> Schema:
    return obj(
        exec=obj(command=STRINGS),
        failureThreshold=integer(),
        grpc=obj(port=integer(), service=string("")),
        httpGet=obj(
            host=STR,
            httpHeaders=arr(obj(("name", "value"), name=STR, value=STR), "atomic"),
            path=STR,
            port=INT_OR_STRING,
            scheme=STR,
        ),
        initialDelaySeconds=integer(),
        periodSeconds=integer(),
        successThreshold=integer(),
        tcpSocket=obj(host=STR, port=INT_OR_STRING),
        timeoutSeconds=integer(),
    )


def _key_ref() -> Schema:
    return atomic(obj(("key",), key=STR, name=string(""), optional=BOOL))


def _name_ref() -> Schema:
    return atomic(obj(name=string(""), optional=BOOL))


def _key_paths() -> Schema:
    return arr(obj(("key", "path"), key=STR, mode=integer(), path=STR), "atomic")


def container() -> Schema:
    return obj(
        args=STRINGS,
        command=STRINGS,
        env=arr(
            obj(
                ("name",),
                name=STR,
                value=STR,
                valueFrom=obj(
                    configMapKeyRef=_key_ref(),
                    fieldRef={**ANY_OBJECT, "x-kubernetes-map-type": "atomic"},
                    resourceFieldRef={**ANY_OBJECT, "x-kubernetes-map-type": "atomic"},
                    secretKeyRef=_key_ref(),
                ),
            ),
            "map",
            ("name",),
        ),
        envFrom=arr(obj(configMapRef=_name_ref(), prefix=STR, secretRef=_name_ref()), "atomic"),
        image=STR,
        imagePullPolicy=STR,
        livenessProbe=_probe(),
        name=STR,
        ports=arr(obj(containerPort=integer(), name=STR, protocol=string("TCP"))),
        readinessProbe=_probe(),
        resources=obj(
            limits={"type": "object", "additionalProperties": QUANTITY_SCHEMA},
            requests={"type": "object", "additionalProperties": QUANTITY_SCHEMA},
        ),
        securityContext=obj(
            allowPrivilegeEscalation=BOOL,
            capabilities=obj(add=STRINGS, drop=STRINGS),
            privileged=BOOL,
            readOnlyRootFilesystem=BOOL,
            runAsGroup=integer("int64"),
            runAsNonRoot=BOOL,
            runAsUser=integer("int64"),
            seccompProfile=obj(("type",), localhostProfile=STR, type=STR),
        ),
        startupProbe=_probe(),
        terminationMessagePath=STR,
        terminationMessagePolicy=STR,
        volumeMounts=arr(
            obj(
                ("mountPath", "name"),
                mountPath=STR,
                mountPropagation=STR,
                name=STR,
                readOnly=BOOL,
                subPath=STR,
            ),
            "map",
            ("mountPath",),
        ),
        workingDir=STR,
    )


def _volume() -> Schema:
    projection = obj(
        configMap=atomic(obj(items=_key_paths(), name=string(""), optional=BOOL)),
        downwardAPI=obj(
            items=arr(
                obj(
                    ("path",),
                    fieldRef=atomic(obj(("fieldPath",), apiVersion=STR, fieldPath=STR)),
                    mode=integer(),
                    path=STR,
                    resourceFieldRef=atomic(
                        obj(("resource",), containerName=STR, divisor=QUANTITY_SCHEMA, resource=STR)
                    ),
                ),
                "atomic",
            )
        ),
        secret=atomic(obj(items=_key_paths(), name=string(""), optional=BOOL)),
        serviceAccountToken=obj(("path",), audience=STR, expirationSeconds=integer("int64"), path=STR),
    )
    return obj(
        ("name",),
        configMap=atomic(obj(defaultMode=integer(), items=_key_paths(), name=string(""), optional=BOOL)),
        csi=ANY_OBJECT,
        emptyDir=ANY_OBJECT,
        ephemeral=ANY_OBJECT,
        hostPath=ANY_OBJECT,
        image=ANY_OBJECT,
        name=STR,
        persistentVolumeClaim=ANY_OBJECT,
        projected=obj(defaultMode=integer(), sources=arr(projection, "atomic")),
        secret=obj(defaultMode=integer(), items=_key_paths(), optional=BOOL, secretName=STR),
    )


def revision_spec() -> Schema:
    """The pod-spec subset Knative accepts, plus its own timeouts and concurrency."""
    return obj(
        ("containers",),
        affinity=ANY_OBJECT,
        automountServiceAccountToken=BOOL,
        containerConcurrency=integer("int64"),
        containers=arr(container()),
        dnsConfig=ANY_OBJECT,
        dnsPolicy=STR,
        enableServiceLinks=BOOL,
        hostAliases=arr(ANY_OBJECT),
        hostIPC=BOOL,
        hostNetwork=BOOL,
        hostPID=BOOL,
        idleTimeoutSeconds=integer("int64"),
        imagePullSecrets=arr(atomic(obj(name=string(""))), "map", ("name",)),
        initContainers=arr(ANY_OBJECT),
        nodeSelector=atomic(STRING_MAP),
        priorityClassName=STR,
        responseStartTimeoutSeconds=integer("int64"),
        runtimeClassName=STR,
        schedulerName=STR,
        securityContext=ANY_OBJECT,
        serviceAccountName=STR,
        shareProcessNamespace=BOOL,
        timeoutSeconds=integer("int64"),
        tolerations=arr(ANY_OBJECT),
        topologySpreadConstraints=arr(ANY_OBJECT),
        volumes=arr(_volume(), "map", ("name",)),
    )


def template() -> Schema:
    meta = obj(
        annotations=STRING_MAP,
        finalizers=arr(STR),
        labels=STRING_MAP,
        name=STR,
        namespace=STR,
    )
    meta["x-kubernetes-preserve-unknown-fields"] = True
    return obj(metadata=meta, spec=revision_spec())


def traffic_target() -> Schema:
    return obj(
        configurationName=STR,
        latestRevision=BOOL,
        percent=integer("int64"),
        revisionName=STR,
        tag=STR,
        url=STR,
    )


def _conditions() -> Schema:
    return arr(
        obj(
            ("status", "type"),
            lastTransitionTime=STR,
            message=STR,
            reason=STR,
            severity=STR,
            status=STR,
            type=STR,
        )
    )


def _status(**fields: Schema) -> Schema:
    return obj(
        annotations=STRING_MAP,
        conditions=_conditions(),
        observedGeneration=integer("int64"),
        **fields,
    )


def _address() -> Schema:
    return obj(CACerts=STR, audience=STR, name=STR, url=STR)


def _top(spec: Schema, status: Schema) -> Schema:
    return obj(apiVersion=STR, kind=STR, metadata={"type": "object"}, spec=spec, status=status)


def service_schema() -> Schema:
    return _top(
        obj(template=template(), traffic=arr(traffic_target())),
        _status(
            address=_address(),
            latestCreatedRevisionName=STR,
            latestReadyRevisionName=STR,
            traffic=arr(traffic_target()),
            url=STR,
        ),
    )


def configuration_schema() -> Schema:
    return _top(
        obj(template=template()),
        _status(latestCreatedRevisionName=STR, latestReadyRevisionName=STR),
    )


def revision_schema() -> Schema:
    image_status = arr(obj(imageDigest=STR, name=STR))
    return _top(
        revision_spec(),
        _status(
            actualReplicas=integer(),
            containerStatuses=image_status,
            desiredReplicas=integer(),
            initContainerStatuses=image_status,
            logUrl=STR,
        ),
    )


def route_schema() -> Schema:
    return _top(
        obj(traffic=arr(traffic_target())),
        _status(address=_address(), traffic=arr(traffic_target()), url=STR),
    )
