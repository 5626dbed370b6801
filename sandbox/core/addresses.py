"""Addresses and host names: what is loopback (a one-developer sandbox), which Host headers a
loopback sandbox answers (DNS rebinding), and where callbacks may go (`CallbackPolicy`: the
`[callbacks] allow` setting, SSRF).

A sandbox bound to a loopback address serves one developer: its callbacks may go anywhere —
their own receiver on 127.0.0.1 is how they test. A sandbox bound to any other address is
shared: a callback URL there is typed by any team, so callbacks to loopback, private,
link-local, multicast, unspecified or otherwise non-public addresses — and to the sandbox's own
addresses — are refused unless `[callbacks] allow` lists the host or a network holding the
address. The rule applies to the address a name resolves to when the callback is sent
(services/senders.py), not only to the URL's text.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAME = re.compile(
    r"^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$"
)


def address(text: str) -> Address | None:
    """`text` as an IP address (an IPv4-mapped IPv6 one as its IPv4), else None."""
    try:
        ip = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback(host: str) -> bool:
    """A loopback name or address: localhost, *.localhost (RFC 6761), 127.0.0.0/8, ::1 ("":
    no host, the default bind)."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name in ("", "localhost") or name.endswith(".localhost"):
        return True
    ip = address(name)
    return ip is not None and ip.is_loopback


def host_name(header: str) -> str:
    """The name of a Host header (or of a URL's netloc): without the port and the brackets of
    an IPv6 address, lower case, without a trailing dot."""
    text = header.strip().lower()
    if text.startswith("["):
        name = text[1 : text.find("]")] if "]" in text else text[1:]
    else:
        name = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    return name.rstrip(".")


def url_host(url: str) -> str:
    """The host name of a URL ("" when it has none)."""
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""


def origin_netloc(origin: str) -> str:
    """`scheme://host[:port]` of an Origin header -> `host[:port]` ("" for "null" or junk)."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return ""
    return parts.netloc.lower() if parts.scheme in ("http", "https") else ""


# ---- where callbacks may go ----


def _kind(ip: Address) -> str:
    """What kind of non-public address `ip` is ("" for a public one)."""
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return "" if ip.is_global else "non-public"


def parse_allow(entries: list[str]) -> tuple[tuple[Network, ...], tuple[str, ...]]:
    """`[callbacks] allow`: (networks, host names). An entry is an address, a network in CIDR
    notation, a host name or `*.domain` (every name under it); ValueError names a bad one."""
    networks: list[Network] = []
    names: list[str] = []
    for entry in entries:
        text = entry.strip().lower().rstrip(".")
        try:
            networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        if not _NAME.match(text):
            raise ValueError(
                f"[callbacks] allow: {entry!r} is not an address, a network (10.0.0.0/8) or a "
                f"host name (receiver.internal, *.internal)"
            )
        names.append(text)
    return tuple(networks), tuple(names)


@dataclass(frozen=True)
class CallbackPolicy:
    """Where a callback may be sent. `shared` (a non-loopback bind): only public addresses
    that are not the sandbox's own, plus what `[callbacks] allow` lists; otherwise anywhere."""

    shared: bool = False
    bind: str = ""
    networks: tuple[Network, ...] = ()
    names: tuple[str, ...] = ()
    own: frozenset[Address] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls, bind: str, allow: list[str], own: frozenset[Address] = frozenset()
    ) -> CallbackPolicy:
        networks, names = parse_allow(allow)
        return cls(not is_loopback(bind), bind, networks, names, own)

    def _named(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host.endswith(n[1:]) if n.startswith("*.") else host == n for n in self.names)

    def refusal(self, host: str, resolved: str) -> str:
        """Why a callback to `host`, which resolved to the address `resolved`, may not go
        ("" when it may)."""
        if not self.shared or self._named(host):
            return ""
        ip = address(resolved)
        if ip is None:
            return f"callback host {host!r} resolved to {resolved!r}, which is not an address"
        if any(ip.version == n.version and ip in n for n in self.networks):
            return ""
        if ip in self.own:
            why = "this sandbox's own address"
        elif kind := _kind(ip):
            why = f"a {kind} address"
        else:
            return ""
        return (
            f"callback to {host} refused: {ip} is {why}, and this sandbox is shared (it binds "
            f"{self.bind}); list the host or its network in [callbacks] allow to permit it"
        )

    def url_refusal(self, url: str) -> str:
        """Why a callback URL can never be sent to, from its text alone ("" when it may be:
        a name is judged when it is resolved, at delivery): an address or a loopback name."""
        host = url_host(url)
        if not host:
            return ""
        if is_loopback(host) and address(host) is None:  # localhost, *.localhost
            return self.refusal(host, "127.0.0.1")
        return self.refusal(host, host) if address(host) is not None else ""
