"""Where a namespaced policy may make the controller send a request: the destinations the admins allow
(`rollout controller --webhook-allow`, Helm `webhooks.allowedDestinations`), checked on the names users write
and again on every address a name resolves to, inside the HTTP client's resolver, so the address checked is
the address connected to (a name that resolves to 169.254.169.254, or re-resolves there later, is refused).

An entry is a host name (`hooks.example.com`), a suffix pattern (`*.svc.cluster.local`: any name under it) or
a network (`10.20.0.0/16`, `192.0.2.7`). A name is allowed when it matches a host entry, an IP literal when a
network holds it. Whatever the name, loopback, link-local (cloud metadata lives there), unspecified,
multicast and reserved addresses are refused unless a network entry names them explicitly; an empty list
allows nothing."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Metadata services outside link-local (AWS' IPv6 one); link-local is refused as a whole.
_METADATA = (ipaddress.ip_network("fd00:ec2::254/128"),)


class DestinationRefused(OSError):
    """A destination outside what the admins allow; the message names it and the fix."""


def _special(ip: IPAddress) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _special(ip.ipv4_mapped)
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local or any(ip in n for n in _METADATA):
        return "a link-local or cloud metadata address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "an unspecified, multicast or reserved address"
    return None


@dataclass(frozen=True)
class Destinations:
    hosts: tuple[str, ...] = ()  # lower-case names; "*.x" matches every name ending in ".x"
    networks: tuple[Network, ...] = ()
    # names the admins configured as destinations themselves (--notifications-config): whatever they resolve
    # to, as the admins meant; no namespaced object can add one
    trusted: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str]) -> Destinations:
        """From the admins' list. Raises ValueError naming the entry and the fix."""
        hosts: list[str] = []
        networks: list[Network] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.removeprefix("*.")
            if not name or "/" in name or ":" in name or "*" in name or " " in name:
                raise ValueError(
                    f"webhook destination {raw!r} is neither a host, a *.suffix pattern nor a network "
                    "(e.g. hooks.example.com, *.svc.cluster.local, 10.0.0.0/8)"
                )
            hosts.append(entry)
        return cls(tuple(hosts), tuple(networks))

    @property
    def empty(self) -> bool:
        return not self.hosts and not self.networks

    def _named(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for entry in self.hosts:
            if entry.startswith("*."):
                if host.endswith(entry[1:]):
                    return True
            elif host == entry:
                return True
        return False

    def _listed(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)

    def address_problem(self, host: str, ip: IPAddress) -> str | None:
        """Why `host`, resolved to `ip`, may not be called; None when it may."""
        if self._listed(ip) or host.lower().rstrip(".") in self.trusted:
            return None
        special = _special(ip)
        if special is not None:
            return f"{host} resolves to {ip}, {special}, which webhooks may not reach"
        if self._named(host):
            return None
        return self.not_granted(host)

    def url_problem(self, url: str) -> str | None:
        """What a URL's own text says against it: its host not granted, or an IP literal refused."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            return f"{url!r} is not a valid URL"
        if parts.scheme not in ("http", "https") or not host:
            return f"{url!r} is not an http(s) URL with a host"
        if parts.username is not None or parts.password is not None:
            return "credentials in the URL are refused; send them in `headers` from an opted-in Secret"
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return None if self._named(host) or host in self.trusted else self.not_granted(host)
        return self.address_problem(host, ip)

    def not_granted(self, host: str) -> str:
        if self.empty:
            return (
                f"{host} is not an allowed webhook destination: this controller allows none "
                "(admins: rollout controller --webhook-allow, Helm webhooks.allowedDestinations)"
            )
        return (
            f"{host} is not an allowed webhook destination; ask the platform admins to allow it "
            "(rollout controller --webhook-allow)"
        )


class GuardedResolver(AbstractResolver):
    """Resolves through `inner`, then refuses the whole name if any address it gave is not allowed: the
    client connects only to addresses this returned."""

    def __init__(self, destinations: Destinations, inner: AbstractResolver) -> None:
        self.destinations = destinations
        self.inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        for entry in found:
            problem = self.destinations.address_problem(host, ipaddress.ip_address(entry["host"]))
            if problem is not None:
                raise DestinationRefused(problem)
        return found

    async def close(self) -> None:
        await self.inner.close()


def refusal(exc: BaseException) -> DestinationRefused | None:
    """The DestinationRefused behind an HTTP client error, if that is what it was."""
    seen: Any = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, DestinationRefused):
            return seen
        seen = getattr(seen, "os_error", None) or seen.__cause__
    return None
