"""Notifications: where a rollout's events are sent (a policy's `notifications`, and the admins' controller-wide
destinations), and the ledger in the Rollout's status that makes each event go out once per destination.

An event is recorded in status.notifications.pending by the same status write that records the decision it
comes from, and leaves the ledger once every destination has answered (or was given up on). A controller
killed between the decision and the send finds the event there and sends it; one killed after the send and
before the ledger's write sends it again, with the same id (CloudEvents `id`, the JSON body's `id`), so that
receivers that can deduplicate do."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Self

from pydantic import Field, model_validator

from rollout.api.common import ApiModel, NameStr, SecretKeyRef, Time, field_error
from rollout.api.source import HeaderValue

EVENT_TYPE_PREFIX = "dev.knrollout.rollout."
# admins' destinations are named "controller/<name>" in the ledger, a policy's by their own name
CONTROLLER_PREFIX = "controller/"
MAX_PENDING = 20  # events kept waiting in one Rollout's ledger; older ones are dropped (and counted)


class NotificationEvent(StrEnum):
    STARTED = "started"  # the candidate is Ready: the first step begins
    STEP_ADVANCED = "stepAdvanced"  # a step ended and the next one begins
    PAUSED = "paused"  # paused at a gate, by a person, past a deadline or on inconclusive evidence
    REGRESSION_DETECTED = "regressionDetected"  # a metric failed and the rollout has not (yet) rolled back
    ROLLED_BACK = "rolledBack"
    PROMOTED = "promoted"
    FAILED = "failed"
    ABORTED = "aborted"
    SUPERSEDED = "superseded"
    UNDONE = "undone"

    @property
    def cloud_event_type(self) -> str:
        """The CloudEvents `type`, e.g. dev.knrollout.rollout.rolledback."""
        return EVENT_TYPE_PREFIX + self.value.lower()


class NotificationType(StrEnum):
    SLACK = "slack"  # an incoming webhook: a Block Kit message
    TEAMS = "teams"  # an incoming webhook or workflow: an Adaptive Card
    WEBHOOK = "webhook"  # our JSON body (docs/notifications.md)
    CLOUD_EVENTS = "cloudEvents"  # a CloudEvent over HTTP, binary or structured mode


class CloudEventsMode(StrEnum):
    BINARY = "binary"  # attributes in ce-* headers, the data as the body
    STRUCTURED = "structured"  # the whole event as application/cloudevents+json


_SECRET_URL_TYPES = (NotificationType.SLACK, NotificationType.TEAMS)


class Notification(ApiModel):
    """One destination of a policy's notifications."""

    # a policy lives in git: a Slack or Teams URL is the credential itself, so it must come from a Secret
    literal_secret_urls: ClassVar[bool] = False

    name: NameStr = Field(description="Unique name of the destination within the policy.")
    type: NotificationType = Field(description="slack, teams, webhook or cloudEvents.")
    url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="Where to POST (webhook, cloudEvents); the host must be one the admins allow "
        "(rollout controller --webhook-allow). Slack and Teams URLs are secrets: use urlFrom.",
    )
    url_from: SecretKeyRef | None = Field(
        default=None,
        description="The URL from a key of a Secret of the policy's namespace that opts in (label knrollout.dev/"
        'metric-credentials: "true"); its host must still be one the admins allow.',
    )
    events: list[NotificationEvent] = Field(
        default_factory=list, max_length=10, description="The events to send; empty: all of them."
    )
    headers: list[HeaderValue] = Field(
        default_factory=list, max_length=10, description="Extra HTTP headers (webhook, cloudEvents)."
    )
    mode: CloudEventsMode = Field(
        default=CloudEventsMode.BINARY, description="cloudEvents only: binary (default) or structured."
    )

    @model_validator(mode="after")
    def _one_url(self) -> Self:
        if (self.url is None) == (self.url_from is None):
            raise field_error("a notification takes exactly one of `url` or `urlFrom`", ("url",), "set one")
        if self.url is not None and "@" in self.url.split("/")[2]:
            raise field_error(
                "credentials in a notification URL are refused", ("url",), "send them in `headers`"
            )
        if self.type in _SECRET_URL_TYPES and self.url is not None and not self.literal_secret_urls:
            raise field_error(
                f"a {self.type.value} webhook URL is a secret and must not be written in a policy",
                ("url",),
                "put it in a Secret labelled knrollout.dev/metric-credentials=true and use urlFrom",
            )
        return self

    def wants(self, event: NotificationEvent) -> bool:
        return not self.events or event in self.events


class ControllerNotification(Notification):
    """An admins' destination (--notifications-config, a file mounted from a Secret): literal URLs allowed,
    and its host is allowed for it alone."""

    literal_secret_urls: ClassVar[bool] = True

    @model_validator(mode="after")
    def _literal(self) -> Self:
        if self.url_from is not None:
            raise field_error(
                "controller-wide destinations take a literal `url` (the file comes from a Secret)",
                ("urlFrom",),
                "write the URL in the notifications config",
            )
        return self


class NotificationsConfig(ApiModel):
    """The admins' notifications config (rollout controller --notifications-config)."""

    destinations: list[ControllerNotification] = Field(default_factory=list, max_length=20)
    status_url: str | None = Field(
        default=None,
        max_length=2048,
        description="A link to a rollout's status in messages; {namespace}, {name} (the Rollout) and "
        "{target} (the Service) are filled in.",
    )
    queue: int = Field(default=1000, ge=1, le=100_000, description="Sends waiting or running at most.")
    per_namespace: int = Field(default=4, ge=1, le=64, description="Sends of one namespace at once.")

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [d.name for d in self.destinations]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"destination names must be unique: {', '.join(dup)}")
        return self


class PendingNotification(ApiModel):
    id: str = Field(description="Unique within the Rollout; the CloudEvents id.")
    event: NotificationEvent
    at: Time
    destinations: list[str] = Field(
        description="Destinations still to answer ('controller/<name>': admins')."
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="The event's data as sent (docs/notifications.md), fixed when it was recorded.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class NotificationLedger(ApiModel):
    sequence: int = Field(default=0, ge=0, description="Events recorded so far (the last id).")
    pending: list[PendingNotification] = Field(
        default_factory=list, description=f"Events not delivered everywhere yet (at most {MAX_PENDING})."
    )
    delivered: int = Field(default=0, ge=0, description="Deliveries answered with success.")
    failed: int = Field(default=0, ge=0, description="Deliveries given up on (refused, failed, dropped).")
    last_failure: str = Field(default="", max_length=512, description="Why the last one was given up on.")
