"""HttpSession: retries, Retry-After, time budget, write safety, errors, TLS/URL rules."""

from __future__ import annotations

import json
import logging

import pytest
import requests
import responses

from fhir_injection.errors import AuthError, ConfigError, FatalNetworkError, TemporaryNetworkError
from fhir_injection.fhir.auth import Auth, BasicAuth, BearerAuth
from fhir_injection.fhir.http import HttpSession, RetryPolicy, parse_retry_after

BASE = "https://fhir.example.org/fhir"


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make_session(fake_time: FakeTime, **kwargs) -> HttpSession:
    return HttpSession(BASE, sleep=fake_time.sleep, clock=fake_time.clock, **kwargs)


OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "processing",
            "diagnostics": 'HAPI-0524: Unknown search parameter "foo"',
        },
        {"severity": "error", "code": "invalid", "details": {"text": "second problem"}},
    ],
}


@responses.activate
def test_retries_503_then_succeeds_and_counts(fake_time):
    responses.get(f"{BASE}/Patient", status=503)
    responses.get(f"{BASE}/Patient", json={"resourceType": "Bundle"}, status=200)
    session = make_session(fake_time)

    resp = session.request("GET", "Patient")

    assert resp.json() == {"resourceType": "Bundle"}
    assert len(responses.calls) == 2
    assert len(fake_time.sleeps) == 1 and 0 < fake_time.sleeps[0] <= 30
    assert session.stats.as_dict() == {
        "requests": 2,
        "retries": 1,
        "by_status": {"200": 1, "503": 1},
    }


@responses.activate
def test_retry_after_seconds_is_honoured(fake_time):
    responses.get(f"{BASE}/Patient", status=503, headers={"Retry-After": "7"})
    responses.get(f"{BASE}/Patient", json={}, status=200)

    make_session(fake_time).request("GET", "Patient")

    assert fake_time.sleeps == [7.0]


@responses.activate
def test_429_with_http_date_retry_after(fake_time):
    responses.get(
        f"{BASE}/Patient",
        status=429,
        headers={
            "Date": "Wed, 21 Oct 2026 07:28:00 GMT",
            "Retry-After": "Wed, 21 Oct 2026 07:28:12 GMT",
        },
    )
    responses.get(f"{BASE}/Patient", json={}, status=200)

    make_session(fake_time).request("GET", "Patient")

    assert fake_time.sleeps == [12.0]


def test_http_date_retry_after_without_date_header_uses_wall_clock():
    # 2026-10-21T07:28:00Z as epoch seconds
    now = 1792567680.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:05 GMT", now) == 5.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:27:00 GMT", now) == 0.0
    assert parse_retry_after("garbage", now) is None


@responses.activate
def test_retry_after_beyond_budget_stops_retrying(fake_time):
    responses.get(f"{BASE}/Patient", status=503, headers={"Retry-After": "500"})
    session = make_session(fake_time, retry=RetryPolicy(max_total_seconds=120))

    with pytest.raises(FatalNetworkError) as info:
        session.request("GET", "Patient")

    assert fake_time.sleeps == []
    assert len(responses.calls) == 1
    assert info.value.status == 503


@responses.activate
def test_total_time_bound_stops_retries(fake_time):
    responses.get(f"{BASE}/Patient", status=504, headers={"Retry-After": "4"})
    session = make_session(fake_time, retry=RetryPolicy(max_attempts=100, max_total_seconds=10))

    with pytest.raises(FatalNetworkError) as info:
        session.request("GET", "Patient")

    assert sum(fake_time.sleeps) <= 10
    assert len(responses.calls) == 3  # t=0, t=4, t=8; a further 4 s wait would pass the 10 s budget
    assert "3 attempts" in str(info.value) and "HTTP 504" in str(info.value)


@responses.activate
def test_attempts_exhausted_reports_count_and_last_status(fake_time):
    responses.get(f"{BASE}/Patient", status=502)
    session = make_session(fake_time, retry=RetryPolicy(max_attempts=4))

    with pytest.raises(FatalNetworkError) as info:
        session.request("GET", "Patient")

    assert len(responses.calls) == 4
    assert info.value.status == 502
    assert "4 attempts" in str(info.value)
    assert all(s <= 30 for s in fake_time.sleeps) and len(fake_time.sleeps) == 3
    assert session.stats.retries == 3


@responses.activate
def test_backoff_grows_and_is_capped(fake_time):
    responses.get(f"{BASE}/Patient", status=503)
    policy = RetryPolicy(
        max_attempts=8, max_total_seconds=10_000, initial_wait=0.5, max_wait=30, jitter=0.5
    )
    with pytest.raises(FatalNetworkError):
        make_session(fake_time, retry=policy).request("GET", "Patient")

    assert len(fake_time.sleeps) == 7
    assert 0.5 <= fake_time.sleeps[0] <= 1.0
    assert fake_time.sleeps[3] >= 4.0  # 0.5 * 2**3
    assert max(fake_time.sleeps) <= 30


@responses.activate
def test_connection_error_is_retried(fake_time):
    responses.get(f"{BASE}/Patient", body=requests.ConnectionError("reset"))
    responses.get(f"{BASE}/Patient", json={"ok": True}, status=200)
    session = make_session(fake_time)

    assert session.request("GET", "Patient").json() == {"ok": True}
    assert len(responses.calls) == 2
    assert session.stats.by_status["connection-error"] == 1


@responses.activate
def test_timeout_is_always_passed(fake_time):
    seen = {}

    def callback(request):
        seen["timeout"] = request.req_kwargs["timeout"]
        return 200, {}, "{}"

    responses.add_callback(responses.GET, f"{BASE}/metadata", callback=callback)
    make_session(fake_time, timeout=(3, 9)).request("GET", "metadata")

    assert seen["timeout"] == (3, 9)


@responses.activate
def test_400_fails_fast_with_operation_outcome(fake_time):
    responses.get(f"{BASE}/Patient", json=OUTCOME, status=400)
    session = make_session(fake_time)

    with pytest.raises(FatalNetworkError) as info:
        session.request("GET", "Patient", params={"foo": "bar"})

    assert info.value.status == 400
    assert info.value.outcome == 'HAPI-0524: Unknown search parameter "foo"; second problem'
    assert len(responses.calls) == 1
    assert fake_time.sleeps == []


@responses.activate
def test_500_to_an_idempotent_request_is_retried_then_succeeds(fake_time):
    responses.get(f"{BASE}/Patient", body="<html>oops</html>", status=500)
    responses.get(f"{BASE}/Patient", json={"resourceType": "Bundle"}, status=200)
    session = make_session(fake_time)

    assert session.request("GET", "Patient").json() == {"resourceType": "Bundle"}
    assert len(responses.calls) == 2 and session.stats.retries == 1


@responses.activate
def test_500_that_persists_ends_with_status_and_outcome_within_the_bounds(fake_time):
    responses.get(f"{BASE}/Patient", json=OUTCOME, status=500)
    session = make_session(fake_time, retry=RetryPolicy(max_attempts=3))

    with pytest.raises(FatalNetworkError) as info:
        session.request("GET", "Patient")

    assert info.value.status == 500 and "HAPI-0524" in info.value.outcome
    assert len(responses.calls) == 3 and "3 attempts" in str(info.value)


@responses.activate
def test_500_with_non_json_body_fails_with_no_outcome(fake_time):
    responses.get(f"{BASE}/Patient", body="<html>oops</html>", status=500)

    with pytest.raises(FatalNetworkError) as info:
        make_session(fake_time, retry=RetryPolicy(max_attempts=2)).request("GET", "Patient")

    assert info.value.status == 500 and info.value.outcome is None
    assert len(responses.calls) == 2


@responses.activate
def test_500_to_a_write_that_is_not_idempotent_is_final(fake_time):
    responses.post(f"{BASE}/Claim", json=OUTCOME, status=500)

    with pytest.raises(FatalNetworkError) as info:
        make_session(fake_time).request("POST", "Claim", json={"resourceType": "Claim"})

    assert info.value.status == 500 and "HAPI-0524" in info.value.outcome
    assert len(responses.calls) == 1 and fake_time.sleeps == []


@responses.activate
def test_post_not_retried_by_default(fake_time):
    responses.post(f"{BASE}/Claim", status=503)

    with pytest.raises(TemporaryNetworkError) as info:
        make_session(fake_time).request("POST", "Claim", json={"resourceType": "Claim"})

    assert len(responses.calls) == 1
    assert fake_time.sleeps == []
    assert "not retried" in str(info.value)


@responses.activate
def test_post_connection_error_not_retried_by_default(fake_time):
    responses.post(f"{BASE}/Claim", body=requests.ConnectionError("reset"))

    with pytest.raises(TemporaryNetworkError):
        make_session(fake_time).request("POST", "Claim", json={"resourceType": "Claim"})

    assert len(responses.calls) == 1


@responses.activate
def test_post_retried_when_safe_to_retry(fake_time):
    responses.post(BASE, status=503)
    responses.post(BASE, json={"resourceType": "Bundle"}, status=200)

    resp = make_session(fake_time).request(
        "POST", BASE, json={"resourceType": "Bundle"}, safe_to_retry=True
    )

    assert resp.status_code == 200
    assert len(responses.calls) == 2


@responses.activate
def test_fhir_headers_and_json_body(fake_time):
    responses.post(f"{BASE}/Claim", json={}, status=201)

    make_session(fake_time).request(
        "POST", "Claim", json={"resourceType": "Claim", "status": "active"}
    )

    request = responses.calls[0].request
    assert request.headers["Accept"] == "application/fhir+json"
    assert request.headers["Content-Type"] == "application/fhir+json"
    assert request.headers["User-Agent"].startswith("fhir-injection/")
    assert json.loads(request.body) == {"resourceType": "Claim", "status": "active"}


@responses.activate
def test_basic_and_bearer_headers(fake_time):
    responses.get(f"{BASE}/metadata", json={}, status=200)

    make_session(fake_time, auth=BasicAuth("alice", "s3cret")).request("GET", "metadata")
    make_session(fake_time, auth=BearerAuth("tok-123")).request("GET", "metadata")

    assert responses.calls[0].request.headers["Authorization"] == "Basic YWxpY2U6czNjcmV0"
    assert responses.calls[1].request.headers["Authorization"] == "Bearer tok-123"


class RenewingAuth(Auth):
    def __init__(self, renew: bool):
        self.renew = renew
        self.token = "old"
        self.calls = 0

    def apply(self, headers):
        headers["Authorization"] = f"Bearer {self.token}"

    def on_unauthorized(self):
        self.calls += 1
        self.token = "new"
        return self.renew


@responses.activate
def test_401_renews_once_then_succeeds(fake_time):
    responses.get(f"{BASE}/Patient", status=401)
    responses.get(f"{BASE}/Patient", json={}, status=200)
    auth = RenewingAuth(renew=True)

    make_session(fake_time, auth=auth).request("GET", "Patient")

    assert auth.calls == 1
    assert [c.request.headers["Authorization"] for c in responses.calls] == [
        "Bearer old",
        "Bearer new",
    ]


@responses.activate
def test_401_twice_raises_auth_error_after_one_renewal(fake_time):
    responses.get(f"{BASE}/Patient", status=401)
    auth = RenewingAuth(renew=True)

    with pytest.raises(AuthError):
        make_session(fake_time, auth=auth).request("GET", "Patient")

    assert auth.calls == 1
    assert len(responses.calls) == 2


@responses.activate
def test_401_without_renewal_is_not_resent(fake_time):
    responses.get(f"{BASE}/Patient", status=401)

    with pytest.raises(AuthError):
        make_session(fake_time, auth=RenewingAuth(renew=False)).request("GET", "Patient")

    assert len(responses.calls) == 1


@pytest.mark.parametrize("url", ["http://fhir.example.org/fhir", "http://10.0.0.5:8080/fhir"])
def test_plain_http_to_remote_host_refused(url):
    with pytest.raises(ConfigError):
        HttpSession(url)
    assert HttpSession(url, allow_insecure_http=True).base_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/fhir",
        "http://127.0.0.1/fhir",
        "http://127.1.2.3:8080/fhir",
        "http://[::1]:8080/fhir",
    ],
)
def test_plain_http_to_loopback_allowed(url):
    assert HttpSession(url).base_url == url


@responses.activate
def test_absolute_url_to_other_origin_refused(fake_time):
    session = make_session(fake_time, auth=BearerAuth("tok"))

    with pytest.raises(FatalNetworkError):
        session.request("GET", "https://evil.example.com/fhir/Patient?_getpages=x")
    with pytest.raises(ConfigError):
        session.request("GET", "http://fhir.example.org/fhir?_getpages=x")  # downgraded next link
    assert len(responses.calls) == 0


def test_ca_bundle_must_exist(tmp_path):
    with pytest.raises(ConfigError):
        HttpSession(BASE, verify=str(tmp_path / "missing.pem"))
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert HttpSession(BASE, verify=str(bundle)).verify == str(bundle)


@responses.activate
def test_ca_bundle_is_passed_to_requests(fake_time, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    seen = {}

    def callback(request):
        seen["verify"] = request.req_kwargs["verify"]
        return 200, {}, "{}"

    responses.add_callback(responses.GET, f"{BASE}/metadata", callback=callback)
    make_session(fake_time, verify=str(bundle)).request("GET", "metadata")

    assert seen["verify"] == str(bundle)


@responses.activate
def test_secrets_never_logged(fake_time, caplog):
    caplog.set_level(logging.DEBUG)
    password, token = "pa55-w0rd-XYZ", "tok-SECRET-987"
    responses.get(f"{BASE}/Patient", status=503)
    responses.get(f"{BASE}/Patient", status=401)
    responses.get(f"{BASE}/Patient", json=OUTCOME, status=400)
    responses.get(f"{BASE}/Coverage", status=401)
    basic = make_session(fake_time, auth=BasicAuth("alice", password))
    bearer = make_session(fake_time, auth=BearerAuth(token))

    errors = []
    for session, path in ((basic, "Patient"), (bearer, "Coverage")):
        with pytest.raises((FatalNetworkError, AuthError)) as info:
            session.request("GET", path, params={"patient": "Patient/123"})
        errors.append(info.value)

    everything = (
        caplog.text + " ".join(str(e) + repr(e) for e in errors) + repr(basic) + repr(bearer.auth)
    )
    assert caplog.records, "expected the retry to be logged"
    for secret in (password, token, "YWxpY2U6cGE1NS13MHJkLVhZWg==", "Patient/123", "Patient%2F123"):
        assert secret not in everything


@responses.activate
def test_a_body_cut_short_is_retried_like_a_dropped_connection():
    t = FakeTime()
    responses.add(
        responses.GET,
        f"{BASE}/Patient",
        body='{"resourceType": "Bundle", "ent',
        status=200,
        content_type="application/fhir+json",
    )
    responses.add(
        responses.GET, f"{BASE}/Patient", json={"resourceType": "Bundle", "entry": []}, status=200
    )
    s = make_session(t)
    resp = s.request("GET", "Patient")
    assert resp.fhir_json == {"resourceType": "Bundle", "entry": []}
    assert s.stats.requests == 2 and s.stats.retries == 1


@responses.activate
def test_a_body_cut_short_on_an_unsafe_write_is_not_retried():
    t = FakeTime()
    responses.add(responses.POST, BASE, body='{"resourceType": "Bun', status=200)
    s = make_session(t)
    with pytest.raises(TemporaryNetworkError, match="cut short"):
        s.request("POST", BASE, json={"resourceType": "Bundle"})
    assert s.stats.requests == 1


@responses.activate
def test_chunked_encoding_error_is_a_transient_failure():
    t = FakeTime()
    responses.add(
        responses.GET, f"{BASE}/Patient", body=requests.exceptions.ChunkedEncodingError("cut")
    )
    responses.add(responses.GET, f"{BASE}/Patient", json={"resourceType": "Bundle"}, status=200)
    s = make_session(t)
    assert s.request("GET", "Patient").status_code == 200
    assert s.stats.by_status["connection-error"] == 1
