"""HTTP to an address a user named (a callback URL, an image URL), with the SSRF rules applied
to the address actually connected to.

Shared by the model services (callbacks) and the API (images by URL), so that both
apply one set of rules the same way: requests-hardened resolves the host once,
refuses private and loopback addresses and connects to that one address (no second
DNS answer); callback_targets' rules are applied to the same address on top.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from requests_hardened import Config as HardenedConfig
from requests_hardened import HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter

from .callback_targets import ForbiddenTarget, check_name

# What a refused address raises, from either set of rules.
REFUSED = (ForbiddenTarget, InvalidIPAddress)


class CheckedAddressAdapter(IPFilterAdapter):
    """requests-hardened's adapter (resolve once, refuse private and loopback, connect to that
    address), with callback_targets' rules applied to the same resolved address."""

    def __init__(self, is_https_proto: bool, allow_loopback: bool) -> None:
        super().__init__(is_https_proto=is_https_proto, allow_loopback=allow_loopback)
        self._loopback = allow_loopback

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        check_name(urlsplit(request.url).hostname or "", self._loopback)  # metadata names, literals
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        # host_params["host"] is now the one address requests-hardened resolved and checked, and
        # the connection goes to it: judge that same address by our rules, with no second lookup.
        check_name(host_params["host"], self._loopback)
        return host_params, pool_kwargs


def pinned_session(connect_timeout: float, read_timeout: float, allow_loopback: bool) -> HTTPSession:
    """A session that checks and pins every connection's address and never follows a redirect
    by itself (a caller that follows one sends a new request, checked the same way)."""
    session = HTTPSession(HardenedConfig(
        ip_filter_enable=True, ip_filter_allow_loopback_ips=allow_loopback, never_redirect=True,
        default_timeout=(connect_timeout, read_timeout)))
    session.trust_env = False  # no proxy from the environment: it would be what gets checked
    for scheme in ("http://", "https://"):
        session.mount(scheme, CheckedAddressAdapter(scheme == "https://", allow_loopback))
    return session
