"""The one URL policy: which addresses this app (and its emulator) may fetch from.

Every outbound fetch goes through it: the adapters' requests and result downloads
(``providers.http_client``: every redirect hop is checked again, at most
``MAX_REDIRECTS``, and the socket itself connects only to an address that was
checked, so a name that resolves differently the second time gets nowhere), image
links a person types (checked before any call, with a reason they can act on),
and the emulator's input-image links (``emulator.files``).

The rule:

- ``https`` only; plain ``http`` only to an allowed origin.
- No user name or password in the link.
- The host is resolved and every address it has must be public: loopback,
  private (10/8, 172.16/12, 192.168/16), link-local (169.254/16, fe80::/10),
  unique-local (fc00::/7), shared/CGNAT (100.64/10), multicast, reserved,
  unspecified and documentation ranges are refused, and so are the cloud metadata
  services (169.254.169.254, fd00:ec2::254, metadata.google.internal...), also
  when an IPv6 address wraps an IPv4 one.
- Except an allowed origin: (scheme, host, port) set on purpose by whoever runs the
  app: a provider's base URL (its default, or the ``*_BASE_URL`` the operator put in
  the environment: a real deployment may reach a provider through an internal
  gateway) and the built-in emulator's own address.

Refusals are ``UrlRefused`` with ``reason``: a sentence naming the problem, e.g.
"127.0.0.1 is this machine: a provider can never fetch it."
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore

__all__ = [
    "MAX_REDIRECTS",
    "METADATA_HOSTS",
    "GuardedBackend",
    "Origin",
    "UrlPolicy",
    "UrlRefused",
    "address_problem",
    "check",
    "check_literal",
    "origin_of",
]

MAX_REDIRECTS = 5
METADATA_HOSTS = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
    "metadata.azure.internal", "metadata.packet.net", "metadata.platformequinix.com",
})
_METADATA_IPS = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "169.254.169.123", "100.100.100.200", "192.0.0.192", "fd00:ec2::254",
))
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: inside some provider's network
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]


class UrlRefused(ValueError):
    """A link this app will not fetch; ``reason`` says why, in words."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(reason)
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _host_of(raw: str) -> str:
    return raw.strip().strip("[]").rstrip(".").lower()


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of ``url``, the default port filled in; None when it has no host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.scheme.lower() not in ("http", "https"):
        return None
    scheme = parts.scheme.lower()
    return Origin(scheme, _host_of(parts.hostname), port or (443 if scheme == "https" else 80))


def _embedded_v4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(ip: Address, shown: str | None = None) -> str | None:
    """Why ``ip`` is not a public internet address, or None when it is one."""
    inner = _embedded_v4(ip)
    if inner is not None:
        return address_problem(inner, shown or str(ip))
    name = shown or str(ip)
    never = "a provider can never fetch it"
    if ip in _METADATA_IPS:
        return f"{name} is a cloud metadata service (it hands out this server's credentials): never fetched"
    if ip.is_loopback:
        return f"{name} is this machine: {never}"
    if ip.is_unspecified:
        return f"{name} means \"this machine\" to most systems: {never}"
    if ip.is_link_local:
        return f"{name} is a link-local address, reachable only from this machine's own network segment: {never}"
    if ip in _SHARED:
        return f"{name} is a shared (carrier-grade NAT) address inside a network, not on the internet: {never}"
    if ip.is_multicast:
        return f"{name} is a multicast address, not a server: {never}"
    if ip.is_private:
        kind = "unique-local" if isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network(
            "fc00::/7") else "private-network"
        return f"{name} is a {kind} address, reachable only inside that network: {never}"
    if ip.is_reserved or not ip.is_global:
        return f"{name} is a reserved address, not one on the internet: {never}"
    return None


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # the forms inet_aton takes: 2130706433, 0x7f.1, 0177.0.0.1
        if host and all(c in "0123456789abcdefx." for c in host) and any(c.isdigit() for c in host):
            return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        pass
    return None


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _name_problem(host: str) -> str | None:
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return f"{host} is this machine: a provider can never fetch it"
    if host in METADATA_HOSTS:
        return f"{host} is a cloud metadata service (it hands out this server's credentials): never fetched"
    if host.endswith((".internal", ".local", ".lan", ".home.arpa", ".intranet", ".corp")):
        return f"{host} is a name only a private network knows: a provider can never fetch it"
    return None


def _shape_problem(url: str) -> tuple[Origin | None, str | None]:
    """(origin, problem) from the link's text alone: a web address, no user info."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None, "the link is not a valid web address"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None, "the link must start with https:// and name a server"
    if parts.username is not None or parts.password is not None:
        return None, "a link with a user name or password in it is never fetched"
    return origin_of(text), None


def check_literal(url: str, allowed: Iterable[Origin] = ()) -> Origin:
    """The checks that need no DNS: shape, scheme, and a host that is an address or a local name.

    Cheap enough for every redraw of a page; ``check`` adds the resolution.
    """
    allowed = tuple(allowed)
    origin, problem = _shape_problem(url)
    if problem is not None or origin is None:
        raise UrlRefused(url, problem or "the link is not a valid web address")
    if origin in allowed:
        return origin
    problem = _name_problem(origin.host)
    ip = _literal(origin.host)
    if problem is None and ip is not None:
        problem = address_problem(ip, origin.host)
    if problem is None and origin.scheme != "https":
        problem = "only https links are fetched (plain http can be read and changed on the way)"
    if problem is not None:
        raise UrlRefused(url, problem)
    return origin


def check(url: str, allowed: Iterable[Origin] = (), *, resolve: Resolver | None = _system_resolve) -> Origin:
    """Raise ``UrlRefused`` unless ``url`` may be fetched; returns its origin.

    ``resolve`` looks the host up (every address must be public); a name that does not
    resolve is left to the connection to fail (``GuardedBackend`` checks again there).
    ``resolve=None`` skips DNS (``check_literal``).
    """
    allowed = tuple(allowed)
    origin = check_literal(url, allowed)
    if origin in allowed or resolve is None or _literal(origin.host) is not None:
        return origin
    try:
        addresses = resolve(origin.host, origin.port)
    except OSError:
        return origin
    for address in addresses:
        problem = address_problem(ipaddress.ip_address(address.split("%", 1)[0]))
        if problem is not None:
            raise UrlRefused(url, f"{origin.host} resolves to {address}, and {problem}")
    return origin


@dataclass(frozen=True)
class UrlPolicy:
    """The policy with its allowed origins: what one provider's client may reach."""

    allowed: tuple[Origin, ...] = ()
    resolve: Resolver | None = _system_resolve

    @classmethod
    def for_base_urls(cls, *urls: str | None, resolve: Resolver | None = _system_resolve) -> UrlPolicy:
        origins = tuple(o for o in (origin_of(u) for u in urls if u) if o is not None)
        return cls(origins, resolve)

    def check(self, url: str) -> Origin:
        return check(url, self.allowed, resolve=self.resolve)

    def allows(self, host: str, port: int) -> bool:
        host = _host_of(host)
        return any(o.host == host and o.port == port for o in self.allowed)

    def transport(self, **kw: Any) -> Any:
        """An ``httpx.HTTPTransport`` whose sockets connect only to checked addresses."""
        import httpx

        # Given the shared context, httpx builds none of its own (it would, for a pool replaced below).
        context = _ssl_context()
        transport = httpx.HTTPTransport(**{"verify": context, **kw})
        transport._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=GuardedBackend(self))
        return transport


_ssl: ssl.SSLContext | None = None
_ssl_lock = threading.Lock()


def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: building one loads the CA bundle (~10 ms), and a client is
    made per job and per "Copy as code" (measured at 8% of the script's time with 20 sessions, issue 17).
    An ``SSLContext`` is safe to share between threads once configured."""
    global _ssl
    with _ssl_lock:
        if _ssl is None:
            import httpx

            _ssl = httpx.create_ssl_context()
        return _ssl


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket layer, resolving the host itself and connecting only to a public address.

    The check before a request (``UrlPolicy.check``) and the connection would each
    resolve the name: between the two, a hostile DNS server could change its answer.
    Here the address checked is the address connected to. TLS still verifies the
    certificate against the host name (httpcore passes it as the SNI name).
    """

    def __init__(self, policy: UrlPolicy) -> None:
        super().__init__()
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if self.policy.allows(host, port):
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        literal = _literal(_host_of(host))
        try:
            addresses = [str(literal)] if literal is not None else _system_resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
        for address in addresses:
            problem = address_problem(ipaddress.ip_address(address.split("%", 1)[0]))
            if problem is not None:
                raise UrlRefused(f"//{host}:{port}", f"{host} resolves to {address}, and {problem}")
        last: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"no address for {host}")
