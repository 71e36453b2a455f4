"""Where metrics come from, and who may say so.

Two kinds of object name a Prometheus:

- `ClusterMetricSource` (cluster-scoped, written by the platform admins; RBAC keeps it theirs): an address and
  the credentials the controller holds for it (Secrets of a namespace the admins name, or a file mounted in
  the controller's pod). Namespaced policies reference it by name (`metricSource.ref`).
- A RolloutPolicy's own `metricSource.prometheus`: accepted only when the admins allow policies to name their
  own Prometheus (`rollout controller --allow-policy-metric-address`, off by default), and then with no
  credential the controller holds: Secrets of the policy's namespace only, and only those labelled
  `knrollout.dev/metric-credentials: "true"` by someone who can write them. No field of a policy names a file.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from rollout.api.common import API_VERSION, GROUP, ApiModel, Condition, NameStr, SecretKeyRef, field_error
from rollout.api.durations import Duration, at_most, check_at_most

# The label (or annotation) a Secret carries to let the controller read it for a namespaced object.
CREDENTIALS_OPT_IN = f"{GROUP}/metric-credentials"
# The longest wait a policy may set for one metric query.
MAX_QUERY_TIMEOUT_SECONDS = 60.0


class Dialect(StrEnum):
    """Which metrics the cluster has (see docs: Knative <= 1.18 OpenCensus, >= 1.21 OpenTelemetry, Kourier)."""

    KNATIVE_CLASSIC = "knative-classic"
    KNATIVE_OTEL = "knative-otel"
    KOURIER = "kourier"


_NO_FILE = (
    "a RolloutPolicy cannot name a file in the controller's pod (removed in v1alpha1 with the trust "
    "boundary); ask the platform admins for a ClusterMetricSource and set metricSource.ref to its name"
)


class BearerToken(ApiModel):
    # `file` stays in the schema so that the API server refuses it with the fix (and a policy stored before
    # the removal is reported invalid by the controller) instead of dropping it silently as an unknown field.
    model_config = ApiModel.model_config | {
        "json_schema_extra": {"x-kubernetes-validations": [{"rule": "!has(self.file)", "message": _NO_FILE}]}
    }

    secret_key_ref: SecretKeyRef | None = Field(
        default=None,
        description="Token from a key of a Secret in the policy's namespace that opts in "
        '(label knrollout.dev/metric-credentials: "true").',
    )
    file: str | None = Field(default=None, description="Removed: refused. Use a ClusterMetricSource.")

    @model_validator(mode="after")
    def _no_file(self) -> Self:
        if self.file is not None:
            message, _, hint = _NO_FILE.partition("; ")
            raise field_error(message, ("file",), hint)
        if self.secret_key_ref is None:
            raise field_error(
                "a bearer token needs `secretKeyRef`", ("secretKeyRef",), "name the Secret and key"
            )
        return self


class BasicAuth(ApiModel):
    secret_name: str = Field(min_length=1, description="Secret holding the credentials (same namespace).")
    username_key: str = Field(default="username", description="Key of the user name. Default username.")
    password_key: str = Field(default="password", description="Key of the password. Default password.")


class HeaderValue(ApiModel):
    name: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9-]+$", description="Header name.")
    value: str | None = Field(default=None, max_length=4096, description="Literal value.")
    secret_key_ref: SecretKeyRef | None = Field(default=None, description="Value from a Secret key.")

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.value is None) == (self.secret_key_ref is None):
            raise ValueError("a header takes exactly one of `value` or `secretKeyRef`")
        return self


class TlsConfig(ApiModel):
    ca_secret_ref: SecretKeyRef | None = Field(default=None, description="CA bundle (PEM) from a Secret key.")
    cert_secret_ref: SecretKeyRef | None = Field(default=None, description="Client certificate (PEM).")
    key_secret_ref: SecretKeyRef | None = Field(default=None, description="Client key (PEM).")
    server_name: str | None = Field(default=None, description="Server name to verify instead of the host.")
    insecure_skip_verify: bool = Field(
        default=False, description="Do not verify the server certificate. Never use in production."
    )

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_secret_ref is None) != (self.key_secret_ref is None):
            raise ValueError("a client certificate needs both `certSecretRef` and `keySecretRef`")
        return self


class PrometheusSource(ApiModel):
    """A policy's own Prometheus (only where the admins allow it; see metricSource.ref)."""

    address: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="Base URL, e.g. http://prometheus.team-a:9090. Accepted only when the admins allow "
        "policies to name their own Prometheus. Default: the controller's Prometheus.",
    )
    timeout: Duration = Field(
        default=10.0,
        description="Per-query timeout, at most 1m. Default 10s.",
        json_schema_extra=at_most(MAX_QUERY_TIMEOUT_SECONDS),
    )
    bearer_token: BearerToken | None = None
    basic_auth: BasicAuth | None = None
    headers: list[HeaderValue] = Field(default_factory=list, max_length=20, description="Extra HTTP headers.")
    tls: TlsConfig | None = None

    @model_validator(mode="after")
    def _one_auth(self) -> Self:
        if self.bearer_token is not None and self.basic_auth is not None:
            raise ValueError("use either `bearerToken` or `basicAuth`, not both")
        check_at_most(
            self.timeout,
            MAX_QUERY_TIMEOUT_SECONDS,
            "a query timeout",
            ("timeout",),
            "use a few seconds, e.g. 10s; a slower Prometheus needs a cheaper query, not a longer wait",
        )
        return self

    def names_secrets(self) -> bool:
        tls = self.tls
        token = self.bearer_token
        return (
            (token is not None and getattr(token, "secret_key_ref", None) is not None)
            or self.basic_auth is not None
            or any(h.secret_key_ref is not None for h in self.headers)
            or (
                tls is not None
                and any(r is not None for r in (tls.ca_secret_ref, tls.cert_secret_ref, tls.key_secret_ref))
            )
        )

    def is_default(self) -> bool:
        """Nothing set but the timeout: the policy uses the controller's own Prometheus."""
        return self.address is None and not self.names_secrets() and not self.headers and self.tls is None


class MetricSource(ApiModel):
    ref: NameStr | None = Field(
        default=None,
        description="Name of a ClusterMetricSource granted by the platform admins "
        "(`kubectl get clustermetricsources`). Unset: the controller's Prometheus.",
    )
    prometheus: PrometheusSource = Field(default_factory=PrometheusSource)
    dialect: Dialect | None = Field(
        default=None,
        description="knative-classic, knative-otel or kourier. Default: the source's, else the controller's.",
    )

    @model_validator(mode="after")
    def _ref_alone(self) -> Self:
        if self.ref is not None and not self.prometheus.is_default():
            raise field_error(
                "`ref` names a granted source, so the policy cannot also set its own Prometheus settings",
                ("prometheus",),
                "keep `ref` and drop `prometheus` (the ClusterMetricSource holds address and credentials)",
            )
        return self


# ------------------------------------------------------------------------------------- ClusterMetricSource


class GrantedBearerToken(ApiModel):
    secret_key_ref: SecretKeyRef | None = Field(
        default=None, description="Token from a key of a Secret in spec.secretNamespace."
    )
    file: str | None = Field(
        default=None,
        max_length=4096,
        description="Token read from a file in the controller's pod (e.g. a projected token), at every query.",
    )

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.secret_key_ref is None) == (self.file is None):
            raise ValueError("a bearer token comes from exactly one of `secretKeyRef` or `file`")
        return self


class GrantedPrometheus(PrometheusSource):
    """An admin's Prometheus: address required; Secrets are read in the source's secretNamespace without an
    opt-in label (the admins chose them); a bearer token may come from a file in the controller's pod."""

    address: str = Field(
        max_length=2048, pattern=r"^https?://[^\s]+$", description="Base URL of the Prometheus API."
    )
    bearer_token: GrantedBearerToken | None = None  # type: ignore[assignment]


class ClusterMetricSourceSpec(ApiModel):
    prometheus: GrantedPrometheus = Field(description="The Prometheus and the credentials to reach it.")
    dialect: Dialect | None = Field(
        default=None, description="Dialect of this Prometheus' metrics. Default: the controller's."
    )
    secret_namespace: NameStr | None = Field(
        default=None,
        description="Namespace of every Secret this source names (required when it names one).",
    )
    namespaces: list[NameStr] = Field(
        default_factory=list,
        max_length=1000,
        description="Namespaces whose policies may use this source. Empty: every namespace.",
    )

    @model_validator(mode="after")
    def _secret_namespace(self) -> Self:
        if self.prometheus.names_secrets() and self.secret_namespace is None:
            raise field_error(
                "this source names Secrets but not the namespace they live in",
                ("secretNamespace",),
                "set secretNamespace, e.g. the controller's namespace",
            )
        return self

    def allows(self, namespace: str) -> bool:
        return not self.namespaces or namespace in self.namespaces


class ClusterMetricSourceStatus(ApiModel):
    conditions: list[Condition] = Field(default_factory=list)


class ClusterMetricSource(ApiModel):
    api_version: Literal["knrollout.dev/v1alpha1"] = API_VERSION
    kind: Literal["ClusterMetricSource"] = "ClusterMetricSource"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ClusterMetricSourceSpec
    status: ClusterMetricSourceStatus | None = None
