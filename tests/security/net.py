"""The network of the security tests: names resolve through a stub (never the system's DNS), and no socket is
ever created for an address outside 127.0.0.0/8, so a broken guard fails a test instead of sending a packet to
a metadata, private or public address."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


class OffLoopback(OSError):
    """A socket was asked for an address off loopback: the guard under test let it through."""


class Attempts:
    """Every address a socket was asked for, and the refused ones."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.refused: list[str] = []

    def __call__(self, addr_info: Any) -> socket.socket:
        family, type_, proto, _, address = addr_info
        host = str(address[0])
        self.asked.append(host)
        if ipaddress.ip_address(host) not in LOOPBACK:
            self.refused.append(host)
            raise OffLoopback(f"test network: no socket for {host}")
        return socket.socket(family=family, type=type_, proto=proto)


class StubResolver(AbstractResolver):
    """Resolves only the names it was given; anything else is an unknown name."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"stub resolver: unknown name {host}")
        address = self.names[host]
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None
