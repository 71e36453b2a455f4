"""Delivering the events in the Rollouts' ledgers (status.notifications) beside the reconcile workers.

A reconcile hands the notifier the status it wrote (`send`): every (event, destination) still pending starts
unless it runs or has answered. A finished delivery keeps its answer and re-queues the target; the next
reconcile takes the answers (`answers`), writes them into the ledger and only then forgets them
(`acknowledge`), so an answer is never lost to a conflicting write. The queue is bounded: past
`queue`, a delivery is given up on at once and counted as dropped in /metrics.

A policy's destinations go through the same allow-list as its webhooks; their URLs (Slack and Teams URLs are
secrets) and headers come only from opted-in Secrets of the policy's namespace. The admins' destinations
(--notifications-config) are allowed by being configured, each for its own host."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp.abc import AbstractResolver

from rollout.analysis.auth import AuthError, SecretReader, SecretRefReader
from rollout.api.notifications import (
    CONTROLLER_PREFIX,
    Notification,
    NotificationsConfig,
    PendingNotification,
)
from rollout.api.rollout import Rollout, RolloutStatus
from rollout.controller.beside import BesideCalls, CallId
from rollout.controller.egress import Destinations
from rollout.controller.metrics import ControllerMetrics
from rollout.controller.notify_formats import render
from rollout.controller.outbound import Attempts, Outbound, secret_headers, signed
from rollout.engine.notices import Delivery, DeliveryId, waiting

log = structlog.get_logger(__name__)

NOTIFICATION_ATTEMPTS = Attempts(timeout=10.0, retries=4, deadline=60.0)


@dataclass(frozen=True)
class NotificationSettings:
    """The admins' side (controller flags / Helm values)."""

    config: NotificationsConfig = field(default_factory=NotificationsConfig)
    destinations: Destinations = field(default_factory=Destinations)  # shared with the webhooks
    signing_key: bytes | None = None  # the webhooks' key signs the JSON bodies too
    attempts: Attempts = NOTIFICATION_ATTEMPTS


def _controller_destinations(settings: NotificationSettings) -> Destinations:
    """The shared allow-list, and the admins' own destinations trusted as they wrote them."""
    hosts = {(urlsplit(d.url or "").hostname or "").lower() for d in settings.config.destinations}
    base = settings.destinations
    return Destinations(base.hosts, base.networks, tuple(sorted(h for h in hosts if h)))


class Notifier:
    def __init__(
        self,
        settings: NotificationSettings,
        notify: Callable[[Any], None],
        metrics: ControllerMetrics,
        *,
        secrets: SecretReader | None = None,
        resolver: AbstractResolver | None = None,
        socket_factory: Callable[[Any], Any] | None = None,
        backoff: float = 0.2,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.secrets = secrets
        config = settings.config
        self.calls: BesideCalls[Delivery] = BesideCalls(
            notify, config.per_namespace, lambda why: Delivery(False, why), limit=config.queue
        )
        tuning: dict[str, Any] = {"resolver": resolver, "socket_factory": socket_factory, "backoff": backoff}
        self.policy_out = Outbound(settings.destinations, **tuning)
        self.controller_out = Outbound(_controller_destinations(settings), **tuning)
        metrics.notifications_in_flight.set_function(lambda: self.calls.in_flight)

    @property
    def controller_destinations(self) -> list[Notification]:
        return list(self.settings.config.destinations)

    @staticmethod
    def _id(rollout: Rollout, event_id: str = "", destination: str = "") -> CallId:
        return (rollout.metadata.namespace or "", rollout.metadata.name, event_id, destination)

    def answers(self, rollout: Rollout) -> dict[DeliveryId, Delivery]:
        """The deliveries of this rollout that have answered and are not yet in its ledger."""
        out: dict[DeliveryId, Delivery] = {}
        for cid in self.calls.done_under(self._id(rollout)[:2]):
            answer = self.calls.answer(cid)
            if answer is not None:
                out[(cid[2], cid[3])] = answer
        return out

    def acknowledge(self, rollout: Rollout, answered: Mapping[DeliveryId, Delivery]) -> None:
        """The ledger written holds these answers: forget them."""
        for event_id, destination in answered:
            cid = self._id(rollout, event_id, destination)
            self.calls.take(cid)

    def send(self, target: Any, rollout: Rollout, status: RolloutStatus) -> None:
        """Start every pending delivery of the ledger just written that is not running or answered."""
        for pending, destination in waiting(status):
            cid = self._id(rollout, pending.id, destination)
            started = self.calls.start(target, cid, partial(self._deliver, rollout, pending, destination))
            if not started:
                self.metrics.notifications.labels("", "dropped").inc()
                log.warning(
                    "notification dropped", rollout=rollout.metadata.name, notification=pending.event.value
                )
                self.calls.settle(target, cid, Delivery(False, "dropped: the notification queue is full"))

    def _destination(self, rollout: Rollout, name: str) -> tuple[Notification | None, bool]:
        if name.startswith(CONTROLLER_PREFIX):
            wanted = name.removeprefix(CONTROLLER_PREFIX)
            return next((d for d in self.settings.config.destinations if d.name == wanted), None), True
        policy = rollout.spec.policy.spec.notifications
        return next((d for d in policy if d.name == name), None), False

    async def _url(self, rollout: Rollout, dest: Notification) -> str:
        if dest.url is not None:
            return dest.url
        assert dest.url_from is not None
        where = f"notifications[{dest.name}].urlFrom"
        if self.secrets is None:
            raise AuthError(f"{where}: this controller reads no Secrets for notifications")
        read = SecretRefReader(self.secrets, rollout.metadata.namespace or "", opt_in=True)
        return (await read(dest.url_from, where)).decode("utf-8", errors="replace").strip()

    async def _deliver(self, rollout: Rollout, pending: PendingNotification, name: str) -> Delivery:
        dest, admins = self._destination(rollout, name)
        if dest is None:
            return self._count("", Delivery(False, f"destination {name} is no longer configured"))
        started = time.monotonic()
        message = render(dest.type, dest.mode, pending, self.settings.config.status_url)
        try:
            url = await self._url(rollout, dest)
            extra = await secret_headers(
                self.secrets, rollout.metadata.namespace or "", dest.headers, f"notifications[{dest.name}]"
            )
        except AuthError as exc:
            return self._count(dest.type.value, Delivery(False, str(exc)))
        headers = {**message.headers, **extra, **signed(self.settings.signing_key, message.body)}
        out = self.controller_out if admins else self.policy_out
        result = await out.post(url, message.body, headers, self.settings.attempts)
        delivery = Delivery(result.ok, result.message if not result.ok else "")
        log.log(
            20 if result.ok else 30,
            "notification sent" if result.ok else "notification failed",
            rollout=rollout.metadata.name,
            namespace=rollout.metadata.namespace,
            notification=pending.event.value,
            id=pending.id,
            destination=name,
            status=result.status_code,
            seconds=round(time.monotonic() - started, 3),
            message=result.message if not result.ok else None,
        )
        return self._count(dest.type.value, delivery, refused=result.message.startswith("refused"))

    def _count(self, kind: str, delivery: Delivery, *, refused: bool = False) -> Delivery:
        outcome = "delivered" if delivery.ok else ("refused" if refused else "failed")
        self.metrics.notifications.labels(kind, outcome).inc()
        return delivery

    async def close(self) -> None:
        await self.calls.close()
        await self.policy_out.close()
        await self.controller_out.close()
