"""What a notification looks like at each kind of destination: a Slack Block Kit message, a Teams Adaptive
Card, our JSON body, a CloudEvent (binary or structured HTTP, built by the `cloudevents` SDK). Pure: a pending
event (its data fixed when it was recorded) in, the HTTP body and headers out. Plain words first (the
headline), the numbers next (the evidence table), then where to look (the status link or command)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent

from rollout.api.common import format_time
from rollout.api.notifications import (
    CloudEventsMode,
    NotificationEvent,
    NotificationType,
    PendingNotification,
)

# Slack's Block Kit limits (api.slack.com/reference/block-kit/blocks): header text 150, section text 3000,
# fields 10 of 2000 each, context 10 elements; the top-level `text` is the notification's fallback.
_SLACK_HEADER, _SLACK_TEXT, _SLACK_FIELD = 150, 3000, 2000
ADAPTIVE_CARD_VERSION = "1.4"  # what Teams renders in incoming-webhook and workflow messages

_TITLES = {
    NotificationEvent.STARTED: "Rollout started",
    NotificationEvent.STEP_ADVANCED: "Rollout step advanced",
    NotificationEvent.PAUSED: "Rollout paused",
    NotificationEvent.REGRESSION_DETECTED: "Regression detected",
    NotificationEvent.ROLLED_BACK: "Rolled back",
    NotificationEvent.PROMOTED: "Promoted",
    NotificationEvent.FAILED: "Rollout failed",
    NotificationEvent.ABORTED: "Rollout aborted",
    NotificationEvent.SUPERSEDED: "Rollout superseded",
    NotificationEvent.UNDONE: "Promotion undone",
}


@dataclass(frozen=True)
class Message:
    body: bytes
    headers: dict[str, str]


def source(namespace: str, rollout: str) -> str:
    """The CloudEvents source of a Rollout's events: its API path."""
    return f"/apis/knrollout.dev/v1alpha1/namespaces/{namespace}/rollouts/{rollout}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def title(p: PendingNotification) -> str:
    target = p.data.get("target") or {}
    return f"{_TITLES[p.event]}: {target.get('name', '?')} ({p.data.get('namespace', '')})"


def status_link(p: PendingNotification, template: str | None) -> str | None:
    if not template:
        return None
    target = p.data.get("target") or {}
    return template.format(
        namespace=p.data.get("namespace", ""), name=p.data.get("rollout", ""), target=target.get("name", "")
    )


def status_command(p: PendingNotification) -> str:
    target = p.data.get("target") or {}
    return f"kubectl knrollout status {target.get('name', '')} -n {p.data.get('namespace', '')}"


def _facts(p: PendingNotification) -> list[tuple[str, str]]:
    d = p.data
    facts = [
        (
            "Phase",
            f"{d.get('phase', '')} ({d.get('reason', '')})" if d.get("reason") else str(d.get("phase")),
        ),
        ("Candidate", f"{d.get('candidateRevision', '')} at {d.get('canaryWeight', 0)}%"),
        ("Stable", f"{d.get('stableRevision', '')} at {d.get('stableWeight', 0)}%"),
    ]
    if d.get("step"):
        facts.append(("Step", str(d["step"])))
    if d.get("requestedBy"):
        facts.append(("Requested by", str(d["requestedBy"])))
    return facts


def evidence_lines(p: PendingNotification) -> list[str]:
    """One line per metric: name, verdict, canary vs stable in its unit, the limit and the requests."""
    lines = []
    for e in p.data.get("evidence") or ():
        line = f"{e.get('metric')}: {e.get('verdict')}, canary {e.get('canaryText', '-')} vs stable {e.get('stableText', '-')}"
        if e.get("threshold"):
            line += f" (limit {e['threshold']})"
        if e.get("canaryRequests") is not None:
            line += f", {e['canaryRequests']}/{e.get('stableRequests', '-')} requests"
        if e.get("dryRun"):
            line += " [dry-run]"
        lines.append(line)
    return lines


def slack(p: PendingNotification, status_url: str | None) -> dict[str, Any]:
    headline = str(p.data.get("headline") or "")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title(p), _SLACK_HEADER)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(headline or title(p), _SLACK_TEXT)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{k}*\n{v}", _SLACK_FIELD)} for k, v in _facts(p)[:10]
            ],
        },
    ]
    evidence = evidence_lines(p)
    if evidence:
        table = "```\n" + "\n".join(evidence) + "\n```"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(table, _SLACK_TEXT)}})
    link = status_link(p, status_url)
    where = f"<{link}|Rollout status>" if link else f"`{status_command(p)}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(where, _SLACK_TEXT)}]})
    return {"text": _cut(f"{title(p)}: {headline}", _SLACK_TEXT), "blocks": blocks}


def adaptive_card(p: PendingNotification, status_url: str | None) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title(p), "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "TextBlock", "text": str(p.data.get("headline") or ""), "wrap": True},
        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(p)]},
    ]
    evidence = evidence_lines(p)
    if evidence:
        body.append({"type": "TextBlock", "text": "Evidence", "weight": "Bolder", "wrap": True})
        body.extend({"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"} for line in evidence)
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    }
    link = status_link(p, status_url)
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Rollout status", "url": link}]
    else:
        body.append({"type": "TextBlock", "text": status_command(p), "fontType": "Monospace", "wrap": True})
    return card


def teams(p: PendingNotification, status_url: str | None) -> dict[str, Any]:
    """The message Teams' incoming webhooks and workflows take: one Adaptive Card attachment."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": adaptive_card(p, status_url),
            }
        ],
    }


def envelope(p: PendingNotification) -> dict[str, Any]:
    """Our JSON body (docs/notifications.md): the CloudEvents attributes a receiver needs, and the data."""
    ns, name = str(p.data.get("namespace", "")), str(p.data.get("rollout", ""))
    return {
        "id": p.id,
        "type": p.event.cloud_event_type,
        "source": source(ns, name),
        "time": format_time(p.at),
        "data": p.data,
    }


def cloud_event(p: PendingNotification) -> CloudEvent:
    ns, name = str(p.data.get("namespace", "")), str(p.data.get("rollout", ""))
    target = p.data.get("target") or {}
    attributes = {
        "id": p.id,
        "source": source(ns, name),
        "type": p.event.cloud_event_type,
        "subject": str(target.get("name", "")),
        "time": p.at,
        "datacontenttype": "application/json",
    }
    return CloudEvent(attributes, dict(p.data))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def render(
    kind: NotificationType, mode: CloudEventsMode, p: PendingNotification, status_url: str | None
) -> Message:
    if kind == NotificationType.SLACK:
        return Message(_json(slack(p, status_url)), {"Content-Type": "application/json"})
    if kind == NotificationType.TEAMS:
        return Message(_json(teams(p, status_url)), {"Content-Type": "application/json"})
    if kind == NotificationType.WEBHOOK:
        return Message(_json(envelope(p)), {"Content-Type": "application/json"})
    event = cloud_event(p)
    http = to_structured_event(event) if mode == CloudEventsMode.STRUCTURED else to_binary_event(event)
    return Message(http.body, dict(http.headers))
