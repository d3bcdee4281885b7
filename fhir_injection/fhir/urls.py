"""Which URLs the adapter talks to, which of them get its credentials, and how a URL is shown.

https everywhere, or plain http to a loopback host (or where the operator allows it); our
Authorization header only to the server's own origin and never to a pre-signed URL; a URL in a log
or message without its query string (query values can carry patient ids or a signature).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qsl, urlsplit

from ..errors import ConfigError

__all__ = [
    "PRESIGNED_PARAMS",
    "check_url_allowed",
    "credentials_allowed",
    "is_loopback",
    "redact_url",
]


def is_loopback(host: str | None) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url_allowed(url: str, allow_insecure_http: bool = False) -> None:
    """Raise ConfigError unless ``url`` is https, or http to a loopback host, or insecure http is allowed."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https":
        return
    if scheme != "http":
        raise ConfigError(f"unsupported URL scheme {scheme!r} (need https://)")
    if not allow_insecure_http and not is_loopback(parts.hostname):
        raise ConfigError(
            f"refusing plain http:// to {parts.hostname}: use https://, or allow_insecure_http for a trusted network"
        )


def redact_url(url: str) -> str:
    """The URL without query string or fragment (query values can carry patient ids)."""
    parts = urlsplit(url)
    suffix = "?…" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path}{suffix}"


PRESIGNED_PARAMS = ("x-amz-signature", "x-goog-signature", "signature", "sig", "se", "sv")


def credentials_allowed(url: str, origin: tuple[str, str]) -> bool:
    """May our Authorization header go to ``url``: on ``origin`` (scheme, netloc) and not a
    pre-signed URL (S3 ``X-Amz-Signature``, GCS ``X-Goog-Signature``, Azure SAS ``sig``)?"""
    parts = urlsplit(url)
    if (parts.scheme.lower(), parts.netloc.lower()) != origin:
        return False
    names = {k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    return not names & set(PRESIGNED_PARAMS)
