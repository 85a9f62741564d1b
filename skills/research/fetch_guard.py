"""Where a fetched page may come from: the guard against server-side request forgery.

A search result or a redirect can name any URL, and a page on 127.0.0.1, on the LAN or at the
cloud metadata address (169.254.169.254) answers a request from this machine as it would
answer the person. So every connection a fetch makes goes through `WebClient`, whose transport
resolves the host itself, checks every address it resolves to, and connects to one of those
checked addresses: the name is resolved once, so a DNS answer that changes between a check and
the connection (DNS rebinding) cannot slip past, and a redirect to another host opens a new
connection, which is checked the same way. TLS still verifies the certificate against the
host name (httpcore does the handshake with the URL's host, not with the address it connected
to), and the Host header is the URL's.

Refused: loopback, private, link-local, shared (CGNAT, 100.64.0.0/10), multicast, unspecified
and reserved addresses, IPv4 and IPv6, and the cloud metadata ones; an IPv6 address that
carries an IPv4 one (IPv4-mapped, NAT64, 6to4) is judged by that IPv4 address. A host named in
`allow_hosts` may be at any address: the person allowed it (the config's `allowed_hosts`, or a
URL they typed in the task).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import anyio
import httpcore
import httpx

from myninja.errors import UsageError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]  # (host, port) -> addresses

METADATA = "a cloud metadata address"
RESERVED = "a reserved address"
PRIVATE = "a private address"

# Checked in order, so the metadata addresses are named as such rather than as link-local.
_REFUSED_V4 = tuple(
    (ipaddress.IPv4Network(net), why)
    for net, why in (
        ("169.254.169.254/32", METADATA),  # AWS, Google Cloud, Azure, OpenStack, Oracle
        ("100.100.100.200/32", METADATA),  # Alibaba Cloud
        ("168.63.129.16/32", METADATA),  # Azure's platform endpoint (WireServer)
        ("0.0.0.0/8", "an unspecified address"),
        ("10.0.0.0/8", PRIVATE),
        ("100.64.0.0/10", "a shared (CGNAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", PRIVATE),
        ("192.0.0.0/24", RESERVED),  # IETF protocol assignments
        ("192.0.2.0/24", RESERVED),  # documentation
        ("192.88.99.0/24", RESERVED),  # the old 6to4 relays
        ("192.168.0.0/16", PRIVATE),
        ("198.18.0.0/15", RESERVED),  # benchmarking
        ("198.51.100.0/24", RESERVED),  # documentation
        ("203.0.113.0/24", RESERVED),  # documentation
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", RESERVED),  # future use, and the broadcast address
    )
)
_REFUSED_V6 = tuple(
    (ipaddress.IPv6Network(net), why)
    for net, why in (
        ("fd00:ec2::254/128", METADATA),  # AWS over IPv6
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("fe80::/10", "a link-local address"),
        ("fc00::/7", PRIVATE),  # unique local
        ("fec0::/10", PRIVATE),  # site-local, deprecated
        ("ff00::/8", "a multicast address"),
        ("64:ff9b:1::/48", PRIVATE),  # local-use NAT64
        ("100::/64", RESERVED),  # discard-only
        ("2001::/23", RESERVED),  # IETF protocol assignments (Teredo among them)
        ("2001:db8::/32", RESERVED),  # documentation
        ("3fff::/20", RESERVED),  # documentation
    )
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")  # all public IPv6 is in here
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the last 32 bits are the IPv4 address


def refusal(address: IPAddress) -> str | None:
    """Why a fetch may not connect to `address` ("a loopback address"), or None: public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return refusal(embedded)
        for network, why in _REFUSED_V6:
            if address in network:
                return why
        return None if address in _GLOBAL_UNICAST_V6 else RESERVED
    for network, why in _REFUSED_V4:
        if address in network:
            return why
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for, where it reaches that IPv4 host: ::ffff:a.b.c.d
    (a dual-stack socket connects to a.b.c.d), 64:ff9b::a.b.c.d (NAT64), 2002:ab:cd::/48
    (6to4). None for any other address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def host_key(host: str) -> str:
    """`host` as a connection names it, so an allowed host matches however it was written:
    lower case, no brackets or final dot, an IP address in its shortest form, a non-ASCII
    name in its ASCII (IDNA) form."""
    text = host.strip().strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        return httpx.URL(f"http://{text}/").raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError):
        return text  # never matches a real connection, which is the safe way to be wrong


class AddressRefused(UsageError):
    """A connection to a refused address was not made. `host` is what the URL named,
    `address` what it is or resolves to, `why` the kind of address ("a private address")."""

    def __init__(self, host: str, address: str, why: str) -> None:
        literal = host_key(host) == host_key(address)
        super().__init__(f"{host} is {why}" if literal else f"{host} resolves to {address}, {why}")
        self.host = host
        self.address = address
        self.why = why


class AddressPolicy:
    """Public addresses, and any address of a host in `allow_hosts` (names or addresses, as
    the person wrote them)."""

    def __init__(self, allow_hosts: Iterable[str] = ()) -> None:
        self.allowed = frozenset(host_key(host) for host in allow_hosts if host.strip())

    def check(self, host: str, addresses: Sequence[str]) -> None:
        """Raise AddressRefused unless every address `host` resolved to may be connected to:
        one bad answer refuses the name (an attacker's DNS can mix a public and a private
        one, and the order we would try them in is not ours to trust)."""
        if host_key(host) in self.allowed:
            return
        for address in addresses:
            if host_key(address) in self.allowed:
                continue
            why = refusal(ipaddress.ip_address(address))
            if why is not None:
                raise AddressRefused(host, address, why)


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system's resolver gives `host`, in its order of preference, each once.
    It reads numeric forms too ("2130706433" is 127.0.0.1), which is why even those go
    through the check."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the check in the one place a connection is opened."""

    def __init__(self, policy: AddressPolicy, resolve: Resolver) -> None:
        self._policy = policy
        self._resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface names it
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        self._policy.check(host, addresses)
        failure: httpcore.ConnectError | None = None
        for address in addresses:  # the checked ones, and only those: no second lookup
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:  # e.g. ::1 where the server has only 127.0.0.1
                failure = exc
        raise failure or httpcore.ConnectError(f"{host} has no address")

    async def _addresses(self, host: str, port: int, limit_s: float | None) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]  # a literal: checked without a lookup
        except ValueError:
            pass
        try:
            with anyio.fail_after(limit_s):
                return list(await self._resolve(host, port))
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:  # as httpcore reports a lookup that fails inside its connect
            raise httpcore.ConnectError(str(exc)) from None

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface names it
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a fetch connects over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (its request and error mapping) over a pool that connects through
    the guarded backend. httpx takes no network backend of its own, so its pool is replaced by
    one built with the same settings and ours."""

    def __init__(self, backend: _GuardedBackend, verify: ssl.SSLContext | bool) -> None:
        if isinstance(verify, ssl.SSLContext):
            context = verify
        else:
            context = httpx.create_ssl_context(verify=verify)
        super().__init__(verify=context)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class WebClient(httpx.AsyncClient):
    """An httpx client every connection of which is checked by an `AddressPolicy`: what
    `fetch_page` uses, and what a caller who shares one client across fetches passes it.
    `allow_hosts`: hosts that may be at any address. `resolve`: how a host name becomes
    addresses (default: the system's resolver); whatever it answers is checked and connected
    to. `verify`: as httpx's. Proxies from the environment are not used: the address a proxy
    connects to is one this guard would never see. Other keyword arguments go to httpx."""

    def __init__(
        self,
        *,
        allow_hosts: Iterable[str] = (),
        resolve: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
        **kwargs: Any,
    ) -> None:
        for name in ("transport", "mounts", "proxy", "trust_env"):
            if name in kwargs:
                raise TypeError(f"WebClient makes its own {name}")
        self.policy = AddressPolicy(allow_hosts)
        backend = _GuardedBackend(self.policy, resolve or system_resolver)
        transport = _GuardedTransport(backend, verify)
        super().__init__(transport=transport, trust_env=False, **kwargs)
