"""Auth schemes, SMART Backend Services token flow, and auth_from_env."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_injection.errors import AuthError, ConfigError
from fhir_injection.fhir.auth import (
    ASSERTION_TYPE,
    BasicAuth,
    BearerAuth,
    NoAuth,
    SmartBackendAuth,
    auth_from_env,
)
from fhir_injection.fhir.http import HttpSession

BASE = "https://fhir.example.org/fhir"
TOKEN_URL = "https://auth.example.org/oauth/token"


def pem_of(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP384R1())


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def form_fields(body: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body).items()}


def smart(rsa_key, clock=None, **kwargs) -> SmartBackendAuth:
    return SmartBackendAuth(
        BASE,
        "billing-bot",
        pem_of(rsa_key),
        key_id="kid-1",
        http=requests.Session(),
        clock=clock or Clock(),
        **kwargs,
    )


# -- simple schemes -------------------------------------------------------


def test_basic_bearer_none_headers():
    headers: dict = {}
    NoAuth().apply(headers)
    assert headers == {}
    BasicAuth("alice", "s3cret").apply(headers)
    assert headers["Authorization"] == "Basic YWxpY2U6czNjcmV0"
    BearerAuth("tok").apply(headers)
    assert headers["Authorization"] == "Bearer tok"
    assert NoAuth().on_unauthorized() is False
    assert BearerAuth("tok").on_unauthorized() is False


def test_reprs_hide_secrets(rsa_key):
    assert "s3cret" not in repr(BasicAuth("alice", "s3cret"))
    assert "tok-xyz" not in repr(BearerAuth("tok-xyz"))
    assert "PRIVATE" not in repr(smart(rsa_key))


# -- SMART ------------------------------------------------------------------


@responses.activate
def test_smart_discovery_token_request_and_jwt_claims(rsa_key):
    responses.get(f"{BASE}/.well-known/smart-configuration", json={"token_endpoint": TOKEN_URL})
    responses.post(
        TOKEN_URL, json={"access_token": "at-1", "token_type": "bearer", "expires_in": 300}
    )
    clock = Clock()
    auth = smart(rsa_key, clock)

    headers: dict = {}
    auth.apply(headers)

    assert headers["Authorization"] == "Bearer at-1"
    assert auth.token_url == TOKEN_URL
    form = form_fields(responses.calls[1].request.body)
    assert form["grant_type"] == "client_credentials"
    assert (
        form["client_assertion_type"]
        == ASSERTION_TYPE
        == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    assert form["scope"] == "system/*.read system/Claim.write system/Task.write"
    assertion = form["client_assertion"]
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "RS384" and header["kid"] == "kid-1"
    claims = jwt.decode(
        assertion,
        rsa_key.public_key(),
        algorithms=["RS384"],
        audience=TOKEN_URL,
        options={"verify_exp": False},
    )
    assert claims["iss"] == claims["sub"] == "billing-bot"
    assert claims["aud"] == TOKEN_URL
    assert clock.now < claims["exp"] <= clock.now + 300
    assert claims["jti"]


@responses.activate
def test_smart_es384_and_unique_jti(ec_key):
    responses.post(TOKEN_URL, json={"access_token": "at", "expires_in": 300})
    auth = SmartBackendAuth(
        BASE, "c", pem_of(ec_key), algorithm="ES384", token_url=TOKEN_URL, http=requests.Session()
    )

    first, second = auth.client_assertion(TOKEN_URL), auth.client_assertion(TOKEN_URL)

    opts = {"verify_exp": False}
    a = jwt.decode(
        first, ec_key.public_key(), algorithms=["ES384"], audience=TOKEN_URL, options=opts
    )
    b = jwt.decode(
        second, ec_key.public_key(), algorithms=["ES384"], audience=TOKEN_URL, options=opts
    )
    assert a["jti"] != b["jti"]
    assert "kid" not in jwt.get_unverified_header(first)


def test_smart_key_must_match_algorithm(rsa_key):
    with pytest.raises(ConfigError):
        SmartBackendAuth(BASE, "c", pem_of(rsa_key), algorithm="ES384", token_url=TOKEN_URL)
    with pytest.raises(ConfigError) as info:
        SmartBackendAuth(BASE, "c", b"not a key", token_url=TOKEN_URL)
    assert "not a key" not in str(info.value)


@responses.activate
def test_smart_token_cached_then_renewed_near_expiry(rsa_key):
    responses.post(TOKEN_URL, json={"access_token": "at-1", "expires_in": 300})
    responses.post(TOKEN_URL, json={"access_token": "at-2", "expires_in": 300})
    clock = Clock()
    auth = smart(rsa_key, clock, token_url=TOKEN_URL)
    headers: dict = {}

    auth.apply(headers)
    clock.now += 239  # 61 s left: still good
    auth.apply(headers)
    assert headers["Authorization"] == "Bearer at-1"
    assert len(responses.calls) == 1

    clock.now += 2  # 59 s left: renew
    auth.apply(headers)
    assert headers["Authorization"] == "Bearer at-2"
    assert len(responses.calls) == 2


@responses.activate
def test_smart_renews_once_on_401_then_succeeds(rsa_key):
    responses.post(TOKEN_URL, json={"access_token": "at-1", "expires_in": 3600})
    responses.post(TOKEN_URL, json={"access_token": "at-2", "expires_in": 3600})
    responses.get(f"{BASE}/Patient", status=401)
    responses.get(f"{BASE}/Patient", json={"resourceType": "Bundle"})
    session = HttpSession(BASE, auth=smart(rsa_key, token_url=TOKEN_URL), sleep=lambda s: None)

    assert session.request("GET", "Patient").json() == {"resourceType": "Bundle"}

    fhir_calls = [c for c in responses.calls if c.request.url.startswith(BASE)]
    assert [c.request.headers["Authorization"] for c in fhir_calls] == [
        "Bearer at-1",
        "Bearer at-2",
    ]
    assert sum(1 for c in responses.calls if c.request.url == TOKEN_URL) == 2


@responses.activate
def test_token_endpoint_error_is_auth_error_without_secrets(rsa_key, caplog):
    caplog.set_level(logging.DEBUG)
    captured = {}

    def refuse(request):
        captured["assertion"] = form_fields(request.body)["client_assertion"]
        # a careless server echoing the assertion back must not make us leak it
        return (
            400,
            {},
            '{"error": "invalid_client", "error_description": "bad signature on '
            + captured["assertion"]
            + '"}',
        )

    responses.add_callback(responses.POST, TOKEN_URL, callback=refuse)
    auth = smart(rsa_key, token_url=TOKEN_URL)

    with pytest.raises(AuthError) as info:
        auth.apply({})

    message = str(info.value)
    assert "invalid_client" in message and "bad signature" in message
    assert captured["assertion"] not in message
    assert captured["assertion"] not in caplog.text
    assert "PRIVATE KEY" not in message


@responses.activate
def test_discovery_failure_is_auth_error(rsa_key):
    responses.get(f"{BASE}/.well-known/smart-configuration", status=404)

    with pytest.raises(AuthError) as info:
        smart(rsa_key).apply({})
    assert "token_endpoint" in str(info.value)


def test_token_url_must_be_https(rsa_key):
    with pytest.raises(ConfigError):
        smart(rsa_key, token_url="http://auth.example.org/token")


# -- auth_from_env ------------------------------------------------------------


def test_env_default_is_no_auth():
    assert isinstance(auth_from_env({}), NoAuth)


def test_env_basic_with_password_file(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("file-pass\n")
    auth = auth_from_env(
        {"FHIR_AUTH": "basic", "FHIR_USERNAME": "bob", "FHIR_PASSWORD_FILE": str(secret)}
    )
    headers: dict = {}
    auth.apply(headers)
    assert (
        headers["Authorization"] == "Basic Ym9iOmZpbGUtcGFzcw=="
    )  # bob:file-pass, newline stripped


def test_env_bearer_with_target_prefix():
    auth = auth_from_env(
        {"FHIR_TARGET_AUTH": "bearer", "FHIR_TARGET_TOKEN": "tt"}, prefix="FHIR_TARGET_"
    )
    headers: dict = {}
    auth.apply(headers)
    assert headers["Authorization"] == "Bearer tt"


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"FHIR_AUTH": "kerberos"}, "FHIR_AUTH"),
        ({"FHIR_AUTH": "basic", "FHIR_PASSWORD": "hunter2-secret"}, "FHIR_USERNAME"),
        ({"FHIR_AUTH": "basic", "FHIR_USERNAME": "bob"}, "FHIR_PASSWORD"),
        (
            {
                "FHIR_AUTH": "basic",
                "FHIR_USERNAME": "bob",
                "FHIR_PASSWORD": "hunter2-secret",
                "FHIR_PASSWORD_FILE": "/x",
            },
            "FHIR_PASSWORD_FILE",
        ),
        ({"FHIR_AUTH": "bearer"}, "FHIR_TOKEN"),
        (
            {"FHIR_AUTH": "bearer", "FHIR_TOKEN_FILE": "/nonexistent/hunter2-secret"},
            "FHIR_TOKEN_FILE",
        ),
        ({"FHIR_TOKEN": "hunter2-secret"}, "FHIR_TOKEN"),  # token set but auth defaults to none
        (
            {"FHIR_AUTH": "bearer", "FHIR_TOKEN": "t", "FHIR_PASSWORD": "hunter2-secret"},
            "FHIR_PASSWORD",
        ),
        ({"FHIR_AUTH": "smart", "FHIR_PRIVATE_KEY_FILE": "/k"}, "FHIR_CLIENT_ID"),
        ({"FHIR_AUTH": "smart", "FHIR_CLIENT_ID": "c"}, "FHIR_PRIVATE_KEY_FILE"),
    ],
)
def test_env_errors_name_variable_not_value(env, variable):
    with pytest.raises(ConfigError) as info:
        auth_from_env(env)
    message = str(info.value)
    assert variable in message
    assert "hunter2-secret" not in message


def test_env_smart(tmp_path, rsa_key):
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem_of(rsa_key))
    env = {
        "FHIR_AUTH": "smart",
        "FHIR_CLIENT_ID": "bot",
        "FHIR_PRIVATE_KEY_FILE": str(key_file),
        "FHIR_KEY_ID": "k9",
        "FHIR_SCOPE": "system/*.read",
        "FHIR_BASE_URL": BASE,
    }
    auth = auth_from_env(env)
    assert isinstance(auth, SmartBackendAuth)
    assert (auth.client_id, auth.key_id, auth.scope, auth.algorithm) == (
        "bot",
        "k9",
        "system/*.read",
        "RS384",
    )
    assert auth.fhir_base_url == BASE and auth.token_url is None

    with pytest.raises(ConfigError) as info:
        auth_from_env({**env, "FHIR_JWT_ALG": "ES384"})
    assert "FHIR_JWT_ALG" in info.value.args[0]

    with pytest.raises(ConfigError) as info:
        auth_from_env({k: v for k, v in env.items() if k != "FHIR_BASE_URL"})
    assert "FHIR_TOKEN_URL" in str(info.value)
