"""Where an attempt may connect (R36): the URL's host is resolved at each attempt and every
address it has must be public, unless private addresses are allowed. The request then goes to
the address that was checked (the name kept for TLS and the Host header), so a name that
resolves elsewhere a moment later cannot send it inside the network."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


class Refused(Exception):
    """The attempt must not be made: recorded as its error."""


@dataclass(frozen=True)
class Target:
    url: str  # with the checked address in place of the name
    host_header: str  # the URL's host and port, as the endpoint expects them
    tls_name: str  # the name TLS checks the certificate against (and sends as SNI)


async def resolve(url: str, allow_private: bool) -> Target:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Refused(f"{host} does not resolve: {error}") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise Refused(f"{host} does not resolve")
    if not allow_private:
        private = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_global]
        if private:
            raise Refused(
                f"{host} resolves to {', '.join(private)}, not a public address"
                " (TALLY_WEBHOOK_ALLOW_PRIVATE=on allows it)"
            )
    return Target(_pinned(url, addresses[0]), parts.netloc, host)


def _pinned(url: str, address: str) -> str:
    parts = urlsplit(url)
    address = address.split("%")[0]  # no zone: a link-local address is private anyway
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
