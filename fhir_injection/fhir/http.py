"""The one HTTP retry loop of the adapter.

Every request to a FHIR server goes through :class:`HttpSession`, which adds
the FHIR headers, a timeout, authentication, and bounded retries (tenacity)
for transient failures. Writes are retried only when the caller says they are
idempotent. Nothing here logs or raises with credentials, request bodies or
query strings (which can carry patient identifiers).
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from tenacity import Future, RetryCallState, RetryError, Retrying, retry_if_exception_type
from urllib3.exceptions import HTTPError as urllib3_errors

from .._version import __version__  # the one version, also the wheel's
from ..errors import AuthError, ConfigError, FatalNetworkError, TemporaryNetworkError
from .bodies import FhirResponse, operation_outcome_text
from .urls import check_url_allowed, credentials_allowed, redact_url

__all__ = [
    "FHIR_JSON",
    "HttpSession",
    "HttpStats",
    "RETRY_STATUSES",
    "RETRY_STATUSES_IDEMPOTENT",
    "RetryPolicy",
    "SAFE_METHODS",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# 500 is retried too, but only for requests that are safe to repeat (GET/HEAD, conditional
# creates, PUTs, If-Match updates: every write this adapter makes). A proxy or gateway in front
# of the server, or HAPI itself under load (a lock timeout, a lost database connection), answers
# 500 for failures that pass; repeating an idempotent request cannot do harm, and the retry budget
# bounds the cost when the 500 is permanent. A 500 to a write that is not idempotent is final.
RETRY_STATUSES_IDEMPOTENT = RETRY_STATUSES | {500}
SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry a transient failure.

    Waits grow exponentially from ``initial_wait`` up to ``max_wait`` with up to
    ``jitter`` seconds of random jitter. A ``Retry-After`` header replaces the
    computed wait; if it asks for more time than the budget has left, retrying
    stops. No wait ever runs past ``max_total_seconds`` from the first attempt.
    """

    max_attempts: int = 6
    max_total_seconds: float = 120.0
    initial_wait: float = 0.5
    max_wait: float = 30.0
    jitter: float = 0.5


class HttpStats:
    """Counters for one session: HTTP attempts, retries, and responses by status."""

    def __init__(self) -> None:
        self.requests = 0
        self.retries = 0
        self.by_status: Counter[str] = Counter()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot, e.g. ``{"requests": 3, "retries": 1, "by_status": {"200": 2, "503": 1}}``."""
        return {
            "requests": self.requests,
            "retries": self.retries,
            "by_status": dict(sorted(self.by_status.items())),
        }


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date, relative to ``now``)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class _Transient(Exception):
    """Internal: one attempt failed in a way worth retrying."""

    def __init__(
        self,
        status: int | None,
        retry_after: float | None = None,
        kind: str | None = None,
        outcome: str | None = None,
    ):
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after
        self.kind = kind  # exception class name for connection failures
        self.outcome = outcome  # the server's OperationOutcome text, if it sent one

    def describe(self) -> str:
        return (
            f"HTTP {self.status}"
            if self.status is not None
            else f"connection failure ({self.kind})"
        )


def _failure(attempt: Future | None) -> _Transient:
    """The _Transient that failed ``attempt``: what wait, stop, before_sleep and RetryError report.

    tenacity calls those (and raises RetryError) only after an attempt failed with an exception
    its ``retry`` accepted, and that is retry_if_exception_type(_Transient).
    """
    exc = attempt.exception() if attempt is not None else None
    assert isinstance(exc, _Transient), "tenacity retries only _Transient"
    return exc


class HttpSession:
    """A requests.Session bound to one FHIR base URL, with auth, timeouts and retries.

    ``verify`` is True (system CAs) or the path of a CA bundle. ``sleep`` and
    ``clock`` are injectable so tests never wait.
    """

    def __init__(
        self,
        base_url: str,
        auth: Any = None,
        verify: bool | str = True,
        timeout: tuple[float, float] = (10, 60),
        retry: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        user_agent: str = f"fhir-injection/{__version__}",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
        wall_clock: Callable[[], float] = time.time,
    ):
        check_url_allowed(base_url, allow_insecure_http)
        if isinstance(verify, str) and not os.path.isfile(verify):
            raise ConfigError(f"CA bundle {verify} is not a readable file")
        if verify is False:
            log.warning("TLS certificate verification is OFF for %s", redact_url(base_url))
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.verify = verify
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.allow_insecure_http = allow_insecure_http
        self.user_agent = user_agent
        self.stats = HttpStats()
        # A read-only run (the trial: ``sync --source URL --target DIR``) sends GET and HEAD only.
        self.read_only = False
        self._count_lock = threading.Lock()  # the crawl's worker threads share the counters
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._session = session or requests.Session()
        base = urlsplit(self.base_url)
        self._origin = (base.scheme.lower(), base.netloc.lower())

    def __repr__(self) -> str:
        return f"HttpSession({redact_url(self.base_url)!r})"

    def url_for(self, url: str) -> str:
        """Absolute URL for ``url`` (relative paths are joined to the base). Refuses other origins."""
        if "://" not in url:
            return f"{self.base_url}/{url.lstrip('/')}"
        check_url_allowed(url, self.allow_insecure_http)
        parts = urlsplit(url)
        if (parts.scheme.lower(), parts.netloc.lower()) != self._origin:
            raise FatalNetworkError(
                f"refusing to send credentials to {parts.scheme}://{parts.netloc}: "
                f"it is not the configured server {self._origin[0]}://{self._origin[1]}"
            )
        return url

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        safe_to_retry: bool | None = None,
        form: list[tuple[str, Any]] | None = None,
    ) -> requests.Response:
        """Send one request, retrying transient failures if it is safe to; return a 2xx/3xx response.

        GET/HEAD are retried by default; other methods only with ``safe_to_retry=True``.
        Raises TemporaryNetworkError (transient failure of a write not retried),
        FatalNetworkError (other 4xx/5xx, or retries exhausted) or AuthError (401).
        An absolute ``url`` without ``params`` is sent byte for byte as given.
        """
        method = method.upper()
        full_url = self.url_for(url)
        where = f"{method} {redact_url(full_url)}"
        if self.read_only and method not in SAFE_METHODS:
            raise FatalNetworkError(f"{where}: refused, this is a read-only run (GET only)")
        safe = (method in SAFE_METHODS) if safe_to_retry is None else safe_to_retry
        body = jsonlib.dumps(json).encode("utf-8") if json is not None else None
        if form is not None:  # a search sent as POST <type>/_search (FHIR R4 3.1.0.8.1)
            body = urlencode([(k, str(v)) for k, v in form]).encode("ascii")
            headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        transient_statuses = RETRY_STATUSES_IDEMPOTENT if safe else RETRY_STATUSES

        def attempt() -> requests.Response:
            resp = self._send_with_auth(method, full_url, params, body, headers, where)
            if resp.status_code in transient_statuses:
                now = self._date_of(resp)
                try:
                    outcome = operation_outcome_text(resp.json())
                except ValueError:
                    outcome = None
                raise _Transient(
                    resp.status_code,
                    parse_retry_after(resp.headers.get("Retry-After"), now),
                    outcome=outcome,
                )
            if 200 <= resp.status_code < 300 and resp.content:
                # A body cut short by a dropped connection is a transient failure, not data.
                try:
                    parsed = jsonlib.loads(resp.content)
                except ValueError:
                    raise _Transient(None, kind="unreadable JSON body (cut short?)") from None
                return FhirResponse.adopt(resp, parsed)
            return resp

        if not safe:
            try:
                resp = attempt()
            except _Transient as exc:
                raise TemporaryNetworkError(
                    f"{where}: {exc.describe()}; not retried because the request may not be idempotent"
                ) from None
        else:
            resp = self._with_retries(attempt, where)
        self._raise_for_status(resp, where)
        return resp

    # -- internals -------------------------------------------------------

    def _with_retries(
        self, attempt: Callable[[], requests.Response], where: str
    ) -> requests.Response:
        policy = self.retry
        start = self._clock()

        def backoff(state: RetryCallState) -> float:
            exponential = policy.initial_wait * 2 ** (state.attempt_number - 1)
            return min(policy.max_wait, exponential + random.uniform(0, policy.jitter))

        def remaining() -> float:
            return policy.max_total_seconds - (self._clock() - start)

        def wait(state: RetryCallState) -> float:
            exc = _failure(state.outcome)
            delay = exc.retry_after if exc.retry_after is not None else backoff(state)
            return max(0.0, min(delay, remaining()))

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= policy.max_attempts or remaining() <= 0:
                return True
            retry_after = _failure(state.outcome).retry_after
            return retry_after is not None and retry_after > remaining()

        def before_sleep(state: RetryCallState) -> None:
            with self._count_lock:
                self.stats.retries += 1
            log.warning(
                "%s: %s, retrying in %.1f s (attempt %d of %d)",
                where,
                _failure(state.outcome).describe(),
                state.upcoming_sleep,
                state.attempt_number + 1,
                policy.max_attempts,
            )

        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop,
            wait=wait,
            sleep=self._sleep,
            before_sleep=before_sleep,
        )
        try:
            return retrying(attempt)
        except RetryError as err:
            last = _failure(err.last_attempt)
            elapsed = self._clock() - start
            raise FatalNetworkError(
                f"{where}: gave up after {err.last_attempt.attempt_number} attempts in {elapsed:.0f} s; "
                f"last: {last.describe()}" + (f": {last.outcome}" if last.outcome else ""),
                status=last.status,
                outcome=last.outcome,
            ) from None

    def _send_with_auth(self, method, url, params, body, headers, where) -> requests.Response:
        resp = self._send_once(method, url, params, body, headers)
        if resp.status_code == 401 and self.auth is not None and self.auth.on_unauthorized():
            log.info("%s: HTTP 401, retrying once with renewed credentials", where)
            resp = self._send_once(method, url, params, body, headers)
        return resp

    def _send_once(self, method, url, params, body, extra_headers) -> requests.Response:
        headers = {"Accept": FHIR_JSON, "User-Agent": self.user_agent}
        if body is not None:
            headers["Content-Type"] = FHIR_JSON
        headers.update(extra_headers or {})  # a form search overrides the Content-Type
        if self.auth is not None:
            self.auth.apply(headers)
        prepared = self._session.prepare_request(
            requests.Request(method, url, params=params, data=body, headers=headers)
        )
        if params is None and "://" in url:
            prepared.url = url  # next links are followed verbatim, never re-encoded
        settings = self._session.merge_environment_settings(
            prepared.url, {}, None, self.verify, None
        )
        with self._count_lock:
            self.stats.requests += 1
        try:
            resp = self._session.send(
                prepared, timeout=self.timeout, allow_redirects=method in SAFE_METHODS, **settings
            )
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            with self._count_lock:
                self.stats.by_status["connection-error"] += 1
            log.debug("%s %s: %s", method, redact_url(url), type(exc).__name__)
            raise _Transient(None, kind=type(exc).__name__) from None
        with self._count_lock:
            self.stats.by_status[str(resp.status_code)] += 1
        log.debug("%s %s -> %d", method, redact_url(url), resp.status_code)
        return resp

    def _date_of(self, resp: requests.Response) -> float:
        """The server's idea of now (Date header), else our wall clock: the base for HTTP-date Retry-After."""
        date = resp.headers.get("Date")
        if date:
            try:
                return email.utils.parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError):
                pass
        return self._wall_clock()

    def _raise_for_status(self, resp: requests.Response, where: str) -> None:
        if resp.status_code < 400:
            return
        try:
            outcome = operation_outcome_text(resp.json())
        except ValueError:
            outcome = None
        if resp.status_code == 401:
            raise AuthError(f"{where}: the server refused our credentials (HTTP 401)")
        detail = f": {outcome}" if outcome else ""
        raise FatalNetworkError(
            f"{where}: HTTP {resp.status_code}{detail}", status=resp.status_code, outcome=outcome
        )

    # -- streaming downloads (Bulk Data files) ------------------------------

    def stream(
        self,
        url: str,
        consume: Callable[[requests.Response], Any],
        *,
        credentials: bool,
        headers: Mapping[str, str] | None = None,
        max_redirects: int = 5,
    ) -> Any:
        """GET ``url`` as a stream and hand the open response to ``consume`` (once per attempt).

        The same retry loop as :meth:`request` (429, 500, 502-504, dropped connections, with
        Retry-After); ``consume`` reads ``resp.raw`` in chunks and must start its output afresh
        on each call. ``url`` may be on another origin (a file server, a pre-signed object-store
        URL): credentials go only where :func:`credentials_allowed` says, and redirects are
        followed here, not by requests, so that rule holds on every hop.
        """
        check_url_allowed(url, self.allow_insecure_http)
        where = f"GET {redact_url(url)}"
        if credentials and not self.same_origin(url):
            raise FatalNetworkError(
                f"{where}: the file server is not the configured FHIR server; refusing to send "
                "it our credentials"
            )

        def attempt() -> Any:
            resp = self._stream_once(url, credentials, headers, max_redirects, where)
            try:
                if resp.status_code in RETRY_STATUSES_IDEMPOTENT:
                    raise _Transient(
                        resp.status_code,
                        parse_retry_after(resp.headers.get("Retry-After"), self._date_of(resp)),
                    )
                self._raise_for_status(resp, where)
                try:
                    return consume(resp)
                except (
                    requests.ConnectionError,
                    requests.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                    urllib3_errors,
                ) as exc:
                    raise _Transient(None, kind=type(exc).__name__) from None
            finally:
                resp.close()

        return self._with_retries(attempt, where)

    def same_origin(self, url: str) -> bool:
        """Is ``url`` on the configured server's scheme, host and port?"""
        parts = urlsplit(url)
        return (parts.scheme.lower(), parts.netloc.lower()) == self._origin

    def _stream_once(self, url, credentials, extra_headers, max_redirects, where):
        send_auth = credentials
        for _hop in range(max_redirects + 1):
            headers = {"User-Agent": self.user_agent, **(extra_headers or {})}
            if send_auth and self.auth is not None:
                self.auth.apply(headers)
            resp = self._send_raw(url, headers)
            if (
                resp.status_code == 401
                and send_auth
                and self.auth is not None
                and self.auth.on_unauthorized()
            ):
                resp.close()
                self.auth.apply(headers)
                resp = self._send_raw(url, headers)
            if resp.status_code not in (301, 302, 303, 307, 308):
                return resp
            location = resp.headers.get("Location")
            resp.close()
            if not location:
                raise FatalNetworkError(f"{where}: a redirect without a Location")
            url = urljoin(url, location)
            check_url_allowed(url, self.allow_insecure_http)
            # After a redirect, credentials only to the FHIR server itself, never to another host
            # nor to a pre-signed URL (its signature is the credential; S3 refuses a second one).
            send_auth = send_auth and credentials_allowed(url, self._origin)
        raise FatalNetworkError(f"{where}: more than {max_redirects} redirects")

    def _send_raw(self, url: str, headers: dict) -> requests.Response:
        prepared = self._session.prepare_request(requests.Request("GET", url, headers=headers))
        prepared.url = url  # pre-signed URLs are used byte for byte
        settings = self._session.merge_environment_settings(url, {}, True, self.verify, None)
        self.stats.requests += 1
        try:
            resp = self._session.send(
                prepared, timeout=self.timeout, allow_redirects=False, **settings
            )
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            self.stats.by_status["connection-error"] += 1
            raise _Transient(None, kind=type(exc).__name__) from None
        self.stats.by_status[str(resp.status_code)] += 1
        return resp
