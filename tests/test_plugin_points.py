"""The declared plug-in points: a pull (fhir_injection.sources.base) and a sink
(fhir_injection.sinks.base) written and registered outside the package work end to end in a live
sync, against the fake FHIR server (offline). The worked example of docs/extending.md.

A pull writes ``for_run`` and ``pages``; a sink writes ``for_run`` and ``plan``; every other
method has a default that does nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import responses

from fhir_injection.decision.practice import Config
from fhir_injection.errors import ConfigError
from fhir_injection.fhir.client import FhirClient
from fhir_injection.fhir.http import HttpSession
from fhir_injection.fhir.resources import reference_of
from fhir_injection.jobs.sync import SyncOptions, run_sync
from fhir_injection.sinks import base as sinks_base
from fhir_injection.sinks.base import Sink, SinkOptions, sink, sink_named, sink_names
from fhir_injection.sinks.claims import build_claim
from fhir_injection.sources import base as sources_base
from fhir_injection.sources.base import Pull, PullOptions, pull, pull_named, pull_names
from tests.builders import admin, world
from tests.builders import rules as load_bundled_rules
from tests.fakefhir import BASE, MA, FakeFhir, instant

CREATED = "2026-10-06T12:00:00Z"


# ----------------------------------------------------------------------------- a toy pull and sink


class ListedPull(Pull):
    """Reads the administrations a list names, by id: one page of them (``ids``)."""

    name = "toy-listed"
    ids: tuple[str, ...] = ()

    @classmethod
    def for_run(cls, client, resolver, options: PullOptions, on_problem, state, progress):
        return cls(client, options.page_size)

    def __init__(self, client: FhirClient, page_size: int):
        self.client, self.page_size, self.read = client, page_size, 0

    def pages(
        self,
        since: str | None,
        recent: Mapping[str, list],
        mark: Callable[[], str | None],
        numbered_from: int = 0,
    ) -> Iterator[list[dict]]:
        found = self.client.read_many(MA, self.ids, self.page_size)
        self.read = len(found)
        yield [found[i] for i in self.ids if i in found]

    def summary(self) -> dict[str, Any]:
        return {"listed": len(self.ids), "read": self.read}


class ClaimListSink(Sink):
    """Keeps each Claim in a list (where a real sink would write an 837P file or a queue)."""

    name = "toy-claim-list"
    last: ClaimListSink | None = None

    @classmethod
    def for_run(cls, rules, config: Config, options: SinkOptions) -> ClaimListSink:
        cls.last = cls(config)
        return cls.last

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.claims_kept: list[dict] = []
        self.committed = False

    def plan(self, decisions, created, primary=None):
        outcome: dict[str, dict[str, Any]] = {}
        for d in decisions:
            if primary is not None and d.administration not in primary:
                continue
            claim = build_claim(d, self.config, created)
            if claim:
                self.claims_kept.append(claim)
                self.claims.created += 1
            outcome[d.administration] = {
                "claim": reference_of(claim) if claim else None,
                "claim_status": claim["status"] if claim else None,
                "task": None,
                "claim_action": "kept" if claim else None,
                "task_action": None,
            }
        return [], outcome

    def commit(self) -> None:
        self.committed = True


@pytest.fixture
def registered(monkeypatch):
    """The toy pull and sink registered with the package's own decorators, for this test only
    (the package's own loaded first, so none registers into the copy and is lost with it)."""
    pull_names(), sink_names()
    monkeypatch.setattr(sources_base, "_PULLS", dict(sources_base._PULLS))
    monkeypatch.setattr(sinks_base, "_SINKS", dict(sinks_base._SINKS))
    pull(ListedPull)
    sink(ClaimListSink)


@pytest.fixture
def server():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeFhir().install(rsps), rsps


def _clinic(fake: FakeFhir) -> None:
    for r in world():
        fake.put(r, last_updated=instant(0))
    for n, when in enumerate(("09:30", "10:30", "11:30"), 1):
        fake.put(
            admin(id=f"ma{n}", effectiveDateTime=f"2026-10-05T{when}:00-05:00"),
            last_updated=instant(10 + n),
            version="1",
        )
    fake.clock = 20


# ----------------------------------------------------------------------------- end to end


def test_a_pull_and_a_sink_registered_outside_the_package_run_a_sync_end_to_end(
    registered, server, tmp_path
):
    fake, rsps = server
    _clinic(fake)
    ListedPull.ids = ("ma1", "ma3")
    client = FhirClient(HttpSession(BASE, sleep=lambda s: None, clock=lambda: 0.0))
    options = SyncOptions(
        pull="toy-listed",
        sink="toy-claim-list",
        created=CREATED,
        state_path=str(tmp_path / "state.json"),
        report_path=str(tmp_path / "report.json"),
    )
    result = run_sync(client, client, load_bundled_rules(), Config(), options)

    kept = ClaimListSink.last
    assert kept is not None and kept.committed
    assert sorted(c["identifier"][0]["value"] for c in kept.claims_kept) == ["ma1", "ma3"]
    assert result.claims.created == 2 and result.exit_code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert sorted(e["administration"] for e in report["administrations"]) == [
        f"{MA}/ma1",
        f"{MA}/ma3",
    ]
    assert {e["claim"] for e in report["administrations"]} == {
        reference_of(c) for c in kept.claims_kept
    }
    assert report["summary"]["pull"] == {
        "strategy": "toy-listed",
        "reason": "asked for with --pull toy-listed",
        "listed": 2,
        "read": 2,
    }
    # the sink wrote nothing to the server: no PUT, no transaction Bundle
    bodies = [c.request.body for c in rsps.calls if c.request.method == "POST"]
    assert "PUT" not in {c.request.method for c in rsps.calls}
    assert not any(
        b'"transaction"' in (b if isinstance(b, bytes) else str(b).encode()) for b in bodies if b
    )


def test_the_registries_find_the_toys_by_name_and_list_them(registered):
    assert pull_named("toy-listed") is ListedPull and "toy-listed" in pull_names()
    assert sink_named("toy-claim-list") is ClaimListSink and "toy-claim-list" in sink_names()
    assert {"folder", "server", "trial"} <= set(sink_names())
    with pytest.raises(ConfigError, match=r"no sink called 'x12'; known: .*server"):
        sink_named("x12")


def test_a_second_pull_or_sink_under_a_taken_name_is_refused(registered):
    class Other(Pull):
        name = "search"

    class OtherSink(Sink):
        name = "server"

    with pytest.raises(ConfigError, match="two pulls called 'search'"):
        pull(Other)
    with pytest.raises(ConfigError, match="two sinks called 'server'"):
        sink(OtherSink)


def test_a_pull_without_pages_or_a_sink_without_plan_says_so():
    with pytest.raises(NotImplementedError, match="yields no pages"):
        next(iter(Pull().pages(None, {}, lambda: None)))
    with pytest.raises(NotImplementedError, match="plans nothing"):
        Sink().plan([], CREATED)


def test_the_optional_hooks_do_nothing_by_default():
    p, s = Pull(), Sink()
    p.bind({}, lambda: None)
    assert (p.ordered, p.known_siblings([]), p.withdrawn(), p.context_reason(), p.summary()) == (
        True,
        None,
        [],
        "",
        {},
    )
    s.begin_page()
    s.take([], [])
    s.send([], {})
    s.commit()
    s.abort()
    assert (s.lookups(["ma1"]), s.failures, s.claims.as_dict()["created"]) == ([], [], 0)


def test_pull_options_are_read_only_and_fresh_means_full_or_since():
    options = PullOptions(since="2026-10-01T00:00:00Z")
    assert options.fresh and not PullOptions().fresh and PullOptions(full=True).fresh
    with pytest.raises(AttributeError):
        options.page_size = 1  # type: ignore[misc]
