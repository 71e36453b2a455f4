"""bench/scale.py's controllers: one `rollout controller` process, or one per shard (`--shards N`), each with
its own metrics port, so that its CPU time, peak RSS and writes are its own."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.scale_probe import (
    controller_writes,
    events_sent,
    free_port,
    metrics_text,
    proc_stats,
    scrape_counts,
)
from tests.integration.harness import controller_command


@dataclass
class Replica:
    shard: int
    proc: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Fleet:
    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas

    @classmethod
    async def start(
        cls,
        kubeconfig: Path,
        logs: Path,
        shards: int,
        args: Sequence[str],
        cwd: Path,
        profiles: Path | None = None,
        cpus: frozenset[int] | None = None,
    ) -> Fleet:
        """One controller per shard; with `profiles`, each under cProfile (controller-K.prof there); with
        `cpus`, each runs on those CPUs only (set before it starts, so all its threads inherit them)."""
        replicas = []
        for shard in range(shards):
            port = free_port()
            sharding = ["--shards", str(shards), "--shard", str(shard), "--identity", f"shard-{shard}"]
            profile = profiles / f"controller-{shard}.prof" if profiles is not None else None
            command = controller_command(
                kubeconfig, f"127.0.0.1:{port}", *(sharding if shards > 1 else []), *args, profile=profile
            )
            log = logs / f"controller-{shard}.log"
            out = await asyncio.to_thread(log.open, "wb")
            pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus is not None else None
            proc = await asyncio.create_subprocess_exec(
                *command, stdout=out, stderr=out, cwd=str(cwd), preexec_fn=pin
            )
            out.close()
            replicas.append(Replica(shard, proc, port, log))
        return cls(replicas)

    def check_alive(self) -> None:
        for r in self.replicas:
            if r.proc.returncode is not None:
                raise RuntimeError(f"controller {r.shard} exited with {r.proc.returncode}")

    def stats(self) -> list[tuple[float, float]]:
        """(CPU seconds, peak RSS MB) of each replica."""
        return [proc_stats(r.proc.pid) for r in self.replicas]

    async def writes(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for r in self.replicas:
            for key, n in (await controller_writes(r.url)).items():
                total[key] = total.get(key, 0) + n
        return total

    async def counts(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for r in self.replicas:
            for key, n in (await scrape_counts(r.url)).items():
                total[key] = total.get(key, 0.0) + n
        return total

    async def events_sent(self, limit: float) -> None:
        for r in self.replicas:
            await events_sent(r.url, limit)

    async def metrics_text(self) -> str:
        """Every replica's /metrics, one after another (histograms add up bucket by bucket)."""
        return "\n".join([await metrics_text(r.url) for r in self.replicas])

    async def stop(self) -> None:
        for r in self.replicas:
            if r.proc.returncode is not None:
                tail = r.log.read_text(errors="replace").splitlines()[-20:]
                print(
                    f"controller {r.shard} exited with {r.proc.returncode}:", *tail, sep="\n", file=sys.stderr
                )
            else:
                r.proc.send_signal(signal.SIGTERM)
        for r in self.replicas:
            try:
                await asyncio.wait_for(r.proc.wait(), timeout=20)
            except TimeoutError:
                r.proc.kill()
                await r.proc.wait()
