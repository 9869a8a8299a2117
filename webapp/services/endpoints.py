"""Where a webhook may deliver: an http(s) URL whose host resolves only to public addresses
(unless WEBHOOK_ALLOW_PRIVATE), checked when it is registered and again before each attempt, and a
connection made to the very address checked (a name pointed inside the network in between, DNS
rebinding, is not followed), without redirects or proxies from the environment."""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import urllib.request
from urllib.parse import urlsplit

from flask import current_app

from .errors import Unprocessable

URL_MAX = 2000
_NOT_PUBLIC = (
    "Webhook URLs must name a host that resolves to public addresses only: this one could not be "
    "resolved from here, or resolves to a loopback, link-local or private address."
)


def _addresses(host: str, port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unprocessable(_NOT_PUBLIC) from exc  # as for an inner name: nothing to tell them apart
    return {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}


def check_url(url: str) -> str:
    """An http(s) URL whose host resolves only to public addresses (unless WEBHOOK_ALLOW_PRIVATE)."""
    return checked(url)[0]


def checked(url: str) -> tuple[str, str | None]:
    """(the URL, the address checked to connect to: None when WEBHOOK_ALLOW_PRIVATE)."""
    url = (url or "").strip()
    if len(url) > URL_MAX:
        raise Unprocessable(f"Webhook URLs have at most {URL_MAX} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise Unprocessable("The webhook URL is not a valid URL.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unprocessable("Webhook URLs must be http:// or https:// URLs with a host.")
    if parts.username or parts.password:
        raise Unprocessable("Webhook URLs must not carry a user name or password.")
    if current_app.config["WEBHOOK_ALLOW_PRIVATE"]:
        return url, None
    addresses = _addresses(parts.hostname, port)
    if not all(_public(address) for address in addresses):
        raise Unprocessable(_NOT_PUBLIC)
    return url, str(min(addresses, key=lambda a: (a.version, int(a))))  # IPv4 first, then stable


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: DNS64 answers for IPv4 hosts
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A public unicast address; an IPv6 one that carries an IPv4 address (mapped, NAT64, 6to4,
    IPv4-compatible) only when that IPv4 address is public too. Teredo and local-use NAT64
    addresses never (their IPv4 address may be hidden or inside the network)."""
    if not address.is_global or address.is_multicast:
        return False
    if address.version == 4:
        return True
    if address.teredo or address in _LOCAL_NAT64:
        return False
    embedded = address.ipv4_mapped or address.sixtofour
    if embedded is None and (address in _NAT64 or address in _IPV4_COMPATIBLE):
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return embedded is None or _public(embedded)


# --- connections ---------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect could lead inside the network
        return None


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, not to what the name resolves to by then
    (DNS rebinding); the name still goes in the Host header."""

    def __init__(self, *args, address: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout, self.source_address)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """As _PinnedHTTP, over TLS: the certificate is checked against the name (SNI), as usual."""

    def __init__(self, *args, address: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout, self.source_address)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHandler(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    def __init__(self, address: str):
        urllib.request.HTTPHandler.__init__(self)
        urllib.request.HTTPSHandler.__init__(self)
        self.address = address

    def http_open(self, req):
        return self.do_open(functools.partial(_PinnedHTTP, address=self.address), req)

    def https_open(self, req):
        return self.do_open(functools.partial(_PinnedHTTPS, address=self.address), req, context=self._context)


def opener(address: str | None) -> urllib.request.OpenerDirector:
    """No redirects, no proxies from the environment; connected to `address` when given."""
    handlers = [_NoRedirects, urllib.request.ProxyHandler({})]
    return urllib.request.build_opener(*handlers, *([_PinnedHandler(address)] if address else []))
