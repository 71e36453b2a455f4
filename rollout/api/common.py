"""Pieces shared by the knrollout.dev models: the base model (camelCase on the wire, unknown fields
rejected), timestamps, conditions and references."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

GROUP = "knrollout.dev"
VERSION = "v1alpha1"
API_VERSION: Final = "knrollout.dev/v1alpha1"

# Label that opts a Knative Service (or standalone Route) in: `knrollout.dev/policy: <policy name>`.
POLICY_LABEL = f"{GROUP}/policy"


class ApiModel(BaseModel):
    """Base of every API model: camelCase field names on the wire, snake_case in Python, unknown fields are
    errors (a typo in a policy must not be silently ignored), instances immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON form written to the cluster: camelCase, no unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def field_error(message: str, at: tuple[int | str, ...], hint: str = "") -> PydanticCustomError:
    """A validation error located below the model that raises it: `at` is the path from that model (e.g.
    `("steps", 2, "weight")`), `hint` how to fix it. rollout.api.load turns both into the FieldProblem."""
    return PydanticCustomError("field_error", "{message}", {"message": message, "at": at, "hint": hint})


def _in_utc(value: datetime) -> datetime:
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UTC)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, seconds precision, as Kubernetes writes metav1.Time."""
    return _in_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds, as Kubernetes writes metav1.MicroTime."""
    return _in_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_DATE_TIME = WithJsonSchema({"type": "string", "format": "date-time"})
Time = Annotated[datetime, PlainSerializer(format_time, return_type=str), _DATE_TIME]
"""A timestamp: timezone-aware datetime in Python, RFC 3339 (`2026-01-02T15:04:05Z`) on the wire."""

MicroTime = Annotated[datetime, PlainSerializer(format_micro_time, return_type=str), _DATE_TIME]
"""A timestamp kept to the microsecond (`2026-01-02T15:04:05.123456Z`): for times the controller computes
with, such as a step's start, which whole seconds would shift by up to a second."""

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str = Field(
        description="Type of the condition, in CamelCase, e.g. Ready, Progressing, PolicyValid."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="One-word CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable details of the last transition.")
    last_transition_time: Time = Field(description="When the status last changed.")
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation the condition was computed from."
    )


class SecretKeyRef(ApiModel):
    """A key of a Secret in the policy's namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret (same namespace).")
    key: str = Field(min_length=1, max_length=253, description="Key inside the Secret's data.")


NameStr = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="A DNS-1123 label: lowercase letters, digits and '-', at most 63 characters.",
    ),
]
