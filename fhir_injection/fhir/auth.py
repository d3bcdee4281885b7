"""Credentials for a FHIR server: none, HTTP Basic, a static bearer token, or SMART Backend Services.

Secrets come from the environment or from files (see :func:`auth_from_env`),
never from the command line. No object here shows a secret in its repr, and
no error message carries a password, token, private key or signed assertion.
"""

from __future__ import annotations

import base64
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal, overload

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ..errors import AuthError, ConfigError, TemporaryNetworkError
from .urls import check_url_allowed, redact_url

__all__ = [
    "ASSERTION_LIFETIME_SECONDS",
    "ASSERTION_TYPE",
    "Auth",
    "BasicAuth",
    "BearerAuth",
    "DEFAULT_SCOPE",
    "NoAuth",
    "RENEW_BEFORE_SECONDS",
    "SmartBackendAuth",
    "auth_from_env",
]

log = logging.getLogger(__name__)

DEFAULT_SCOPE = "system/*.read system/Claim.write system/Task.write"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RENEW_BEFORE_SECONDS = 60
ASSERTION_LIFETIME_SECONDS = 300  # SMART: exp no more than five minutes ahead


class Auth:
    """Base class: adds credentials to request headers; may renew them after a 401."""

    def apply(self, headers: dict) -> None:
        """Add this scheme's Authorization header (if any) to ``headers`` in place."""

    def on_unauthorized(self) -> bool:
        """The server answered 401. Return True if credentials were renewed and one retry makes sense."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NoAuth(Auth):
    """No credentials (an open test server)."""


class BasicAuth(Auth):
    """HTTP Basic authentication."""

    def __init__(self, username: str, password: str):
        self.username = username
        self._header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode(
            "ascii"
        )

    def apply(self, headers: dict) -> None:
        """Set ``Authorization: Basic …``."""
        headers["Authorization"] = self._header


class BearerAuth(Auth):
    """A static bearer token obtained out of band."""

    def __init__(self, token: str):
        self._header = f"Bearer {token}"

    def apply(self, headers: dict) -> None:
        """Set ``Authorization: Bearer …``."""
        headers["Authorization"] = self._header


class SmartBackendAuth(Auth):
    """SMART Backend Services: client_credentials grant with a signed JWT client assertion.

    The token endpoint is discovered from ``<base>/.well-known/smart-configuration``
    unless ``token_url`` is given. Tokens are cached and renewed when fewer than
    60 seconds of validity remain, and once more after a 401.
    """

    def __init__(
        self,
        fhir_base_url: str,
        client_id: str,
        private_key_pem: str | bytes,
        key_id: str | None = None,
        algorithm: str = "RS384",
        scope: str = DEFAULT_SCOPE,
        token_url: str | None = None,
        http: Any = None,
        clock: Callable[[], float] = time.time,
        allow_insecure_http: bool = False,
        timeout: tuple[float, float] = (10, 60),
    ):
        if algorithm not in ("RS384", "ES384"):
            raise ConfigError("SMART JWT algorithm must be RS384 or ES384")
        self._key = _load_private_key(private_key_pem, algorithm)
        self.fhir_base_url = fhir_base_url.rstrip("/")
        self.client_id = client_id
        self.key_id = key_id
        self.algorithm = algorithm
        self.scope = scope
        self.token_url = token_url
        self.allow_insecure_http = allow_insecure_http
        self.timeout = timeout
        self._http = http if http is not None else requests.Session()
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        if token_url:
            check_url_allowed(token_url, allow_insecure_http)

    def __repr__(self) -> str:
        return f"SmartBackendAuth(client_id={self.client_id!r}, algorithm={self.algorithm!r})"

    def apply(self, headers: dict) -> None:
        """Set ``Authorization: Bearer <access token>``, fetching or renewing the token as needed."""
        if self._token is None or self._clock() >= self._expires_at - RENEW_BEFORE_SECONDS:
            self._renew()
        headers["Authorization"] = f"Bearer {self._token}"

    def on_unauthorized(self) -> bool:
        """Drop the cached token and fetch a new one; True when that worked."""
        self._token = None
        self._renew()
        return True

    def discover_token_url(self) -> str:
        """The token_endpoint from the server's SMART configuration (cached in ``token_url``)."""
        if self.token_url:
            return self.token_url
        url = f"{self.fhir_base_url}/.well-known/smart-configuration"
        check_url_allowed(url, self.allow_insecure_http)
        try:
            resp = self._http.get(url, headers={"Accept": "application/json"}, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TemporaryNetworkError(
                f"SMART discovery at {url} failed: {type(exc).__name__}"
            ) from None
        try:
            endpoint = resp.json().get("token_endpoint") if resp.status_code == 200 else None
        except (ValueError, AttributeError):
            endpoint = None
        if not endpoint:
            raise AuthError(
                f"SMART discovery at {url} gave no token_endpoint (HTTP {resp.status_code}); configure the token URL"
            )
        check_url_allowed(endpoint, self.allow_insecure_http)
        self.token_url = endpoint
        return endpoint

    def client_assertion(self, token_url: str) -> str:
        """A freshly signed JWT identifying this client to ``token_url``."""
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        headers = {"typ": "JWT"}
        if self.key_id:
            headers["kid"] = self.key_id
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def _renew(self) -> None:
        token_url = self.discover_token_url()
        assertion = self.client_assertion(token_url)
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        try:
            resp = self._http.post(
                token_url, data=form, headers={"Accept": "application/json"}, timeout=self.timeout
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TemporaryNetworkError(
                f"token endpoint {redact_url(token_url)} unreachable: {type(exc).__name__}"
            ) from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if resp.status_code != 200 or not body.get("access_token"):
            error = str(body.get("error") or "no access_token in response")
            description = str(body.get("error_description") or "")
            text = f"{error}: {description}" if description else error
            for secret in (assertion, body.get("access_token")):
                if secret:
                    text = text.replace(str(secret), "[redacted]")
            raise AuthError(
                f"token endpoint {redact_url(token_url)} refused us (HTTP {resp.status_code}): {text[:500]}"
            )
        self._token = body["access_token"]
        try:
            lifetime = float(body.get("expires_in", ASSERTION_LIFETIME_SECONDS))
        except (TypeError, ValueError):
            lifetime = ASSERTION_LIFETIME_SECONDS
        self._expires_at = self._clock() + lifetime
        log.info("obtained SMART access token for client %s (valid %d s)", self.client_id, lifetime)


def _load_private_key(pem: str | bytes, algorithm: str):
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError("the SMART private key is not an unencrypted PEM private key") from None
    wanted = rsa.RSAPrivateKey if algorithm == "RS384" else ec.EllipticCurvePrivateKey
    if not isinstance(key, wanted):
        raise ConfigError(f"the SMART private key does not match algorithm {algorithm}")
    return key


def _value(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value else None


@overload
def _secret(env: Mapping[str, str], name: str, required: Literal[True] = ...) -> str: ...
@overload
def _secret(env: Mapping[str, str], name: str, required: bool) -> str | None: ...
def _secret(env: Mapping[str, str], name: str, required: bool = True) -> str | None:
    """Read ``name`` or ``name_FILE`` (exactly one), never echoing the value."""
    direct, file_var = _value(env, name), _value(env, f"{name}_FILE")
    if direct and file_var:
        raise ConfigError(f"set only one of {name} and {name}_FILE")
    if file_var:
        try:
            with open(file_var, encoding="utf-8") as fh:
                direct = fh.read().strip()
        except OSError:
            raise ConfigError(f"cannot read the file named by {name}_FILE") from None
        if not direct:
            raise ConfigError(f"the file named by {name}_FILE is empty")
    if required and not direct:
        raise ConfigError(f"{name} or {name}_FILE is required")
    return direct


_MODE_VARS = {
    "basic": ("USERNAME", "PASSWORD", "PASSWORD_FILE"),
    "bearer": ("TOKEN", "TOKEN_FILE"),
    "smart": ("CLIENT_ID", "PRIVATE_KEY_FILE", "KEY_ID", "JWT_ALG", "SCOPE", "TOKEN_URL"),
}


def auth_from_env(
    env: Mapping[str, str] = os.environ,
    prefix: str = "FHIR_",
    *,
    base_url: str | None = None,
    http: Any = None,
    allow_insecure_http: bool = False,
) -> Auth:
    """Build the Auth described by ``<prefix>AUTH`` = none|basic|bearer|smart (default none).

    basic: ``<P>USERNAME`` + ``<P>PASSWORD`` or ``<P>PASSWORD_FILE``; bearer:
    ``<P>TOKEN`` or ``<P>TOKEN_FILE``; smart: ``<P>CLIENT_ID``,
    ``<P>PRIVATE_KEY_FILE``, optional ``<P>KEY_ID``, ``<P>JWT_ALG`` (RS384|ES384),
    ``<P>SCOPE``, ``<P>TOKEN_URL``; SMART discovery uses ``base_url`` or ``<P>BASE_URL``.
    Missing or contradictory settings raise ConfigError naming the variable, never its value.
    """
    mode_var = f"{prefix}AUTH"
    mode = (_value(env, mode_var) or "none").strip().lower()
    if mode not in ("none", *_MODE_VARS):
        raise ConfigError(f"{mode_var} must be one of none, basic, bearer, smart")
    for other, names in _MODE_VARS.items():
        if other == mode:
            continue
        stray = [
            prefix + n
            for n in names
            if _value(env, prefix + n) and n not in _MODE_VARS.get(mode, ())
        ]
        if stray:
            raise ConfigError(
                f"{', '.join(stray)} set but {mode_var} selects {mode!r} authentication"
            )
    if mode == "none":
        return NoAuth()
    if mode == "basic":
        username = _value(env, f"{prefix}USERNAME")
        if not username:
            raise ConfigError(f"{prefix}USERNAME is required when {mode_var}=basic")
        return BasicAuth(username, _secret(env, f"{prefix}PASSWORD"))
    if mode == "bearer":
        return BearerAuth(_secret(env, f"{prefix}TOKEN"))
    return _smart_from_env(env, prefix, base_url, http, allow_insecure_http)


def _smart_from_env(
    env: Mapping[str, str], prefix: str, base_url: str | None, http: Any, allow_insecure_http: bool
) -> SmartBackendAuth:
    """SMART Backend Services from ``<P>CLIENT_ID``, ``<P>PRIVATE_KEY_FILE`` and the optional rest."""
    mode_var = f"{prefix}AUTH"
    client_id = _value(env, f"{prefix}CLIENT_ID")
    if not client_id:
        raise ConfigError(f"{prefix}CLIENT_ID is required when {mode_var}=smart")
    key_file = _value(env, f"{prefix}PRIVATE_KEY_FILE")
    if not key_file:
        raise ConfigError(f"{prefix}PRIVATE_KEY_FILE is required when {mode_var}=smart")
    try:
        with open(key_file, "rb") as fh:
            pem = fh.read()
    except OSError:
        raise ConfigError(f"cannot read the file named by {prefix}PRIVATE_KEY_FILE") from None
    algorithm = (_value(env, f"{prefix}JWT_ALG") or "RS384").upper()
    if algorithm not in ("RS384", "ES384"):
        raise ConfigError(f"{prefix}JWT_ALG must be RS384 or ES384")
    token_url = _value(env, f"{prefix}TOKEN_URL")
    base = base_url or _value(env, f"{prefix}BASE_URL")
    if not base and not token_url:
        raise ConfigError(
            f"{prefix}TOKEN_URL or {prefix}BASE_URL (for SMART discovery) is required"
        )
    try:
        _load_private_key(pem, algorithm)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}PRIVATE_KEY_FILE / {prefix}JWT_ALG: {exc}") from None
    return SmartBackendAuth(
        fhir_base_url=base or "",
        client_id=client_id,
        private_key_pem=pem,
        key_id=_value(env, f"{prefix}KEY_ID"),
        algorithm=algorithm,
        scope=_value(env, f"{prefix}SCOPE") or DEFAULT_SCOPE,
        token_url=token_url,
        http=http,
        allow_insecure_http=allow_insecure_http,
    )
