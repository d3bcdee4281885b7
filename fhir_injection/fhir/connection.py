"""A :class:`~fhir_injection.fhir.client.FhirClient` for a URL: its credentials from the
environment, TLS verified (a private CA added), plain http only to loopback unless allowed, and
the command's retry limit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigError
from .client import FhirClient

__all__ = ["ClientOptions", "connect", "make_client"]


def connect(
    url: str,
    env_prefix: str = "FHIR_",
    ca_bundle: str | None = None,
    allow_insecure_http: bool = False,
    env: Mapping[str, str] | None = None,
) -> FhirClient:
    """A FhirClient for ``url`` with authentication from the environment (``<prefix>AUTH`` ...).

    TLS is verified (``ca_bundle`` adds a private CA); plain http:// only to loopback
    unless ``allow_insecure_http``.
    """
    import os

    from .auth import auth_from_env
    from .http import HttpSession

    auth = auth_from_env(
        os.environ if env is None else env,
        env_prefix,
        base_url=url,
        allow_insecure_http=allow_insecure_http,
    )
    return FhirClient(
        HttpSession(
            url, auth=auth, verify=ca_bundle or True, allow_insecure_http=allow_insecure_http
        )
    )


@dataclass(frozen=True)
class ClientOptions:
    """How a command connects to a server (``--ca-bundle``, ``--allow-insecure-http``,
    ``--max-retry-seconds``); None: the default."""

    ca_bundle: str | None = None
    allow_insecure_http: bool = False
    max_retry_seconds: float | None = None


def make_client(url: str, prefix: str, options: ClientOptions) -> FhirClient:
    """A client for ``url``, its credentials from the environment variables starting ``prefix``."""
    client = connect(url, prefix, options.ca_bundle, bool(options.allow_insecure_http))
    max_retry = options.max_retry_seconds
    if max_retry is not None:
        if max_retry < 0:
            raise ConfigError("--max-retry-seconds must be 0 or more")
        from dataclasses import replace

        client.session.retry = replace(client.session.retry, max_total_seconds=float(max_retry))
    return client
