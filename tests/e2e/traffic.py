"""Load for the end-to-end rollouts: GET requests at a steady rate through Knative's ingress, addressed to a
Service by its Host header. Bounded: it stops when asked, after `max_seconds`, or after `rps * max_seconds`
requests, whichever comes first. The ingress must be a loopback address (hack/kind-up.sh maps Kourier to
127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp


@dataclass
class LoadReport:
    sent: int = 0
    codes: Counter[str] = field(default_factory=Counter)

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.codes.items() if code.startswith("5"))


async def _one(session: aiohttp.ClientSession, url: str, headers: dict[str, str], report: LoadReport) -> None:
    try:
        async with session.get(url, headers=headers) as response:
            await response.read()
            report.codes[str(response.status)] += 1
    except (aiohttp.ClientError, TimeoutError) as exc:
        report.codes[type(exc).__name__] += 1


@contextlib.asynccontextmanager
async def steady_load(
    ingress: str,
    host: str,
    rps: float = 20.0,
    max_seconds: float = 900.0,
    tagged: tuple[str, float] | None = None,
) -> AsyncIterator[LoadReport]:
    """`tagged=(tag, share)`: that share of the requests (evenly spread) carries `Knative-Serving-Tag: tag`, as a
    smoke test of a blue/green preview or an A/B cohort would."""
    report = LoadReport()
    plain = {"Host": host}
    with_tag = {**plain, "Knative-Serving-Tag": tagged[0]} if tagged else plain
    share = tagged[1] if tagged else 0.0
    budget = int(rps * max_seconds)
    timeout = aiohttp.ClientTimeout(total=10)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        pending: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                while report.sent < budget and loop.time() - started < max_seconds:
                    # the n-th request is tagged when floor(n * share) steps up: exactly `share` of them
                    n = report.sent
                    headers = with_tag if int((n + 1) * share) > int(n * share) else plain
                    task = asyncio.create_task(_one(session, f"{ingress}/", headers, report))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    report.sent += 1
                    await asyncio.sleep(1.0 / rps)
            finally:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    task = asyncio.create_task(run())
    try:
        yield report
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
