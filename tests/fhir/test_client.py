"""FhirClient: capabilities, paging, chunked reads, transactions."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from fhir_injection.errors import FatalNetworkError, PagingExpired, TemporaryNetworkError
from fhir_injection.fhir.client import FhirClient, entry_results
from fhir_injection.fhir.http import HttpSession

BASE = "https://fhir.example.org/fhir"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps) -> FhirClient:
    return FhirClient(HttpSession(BASE, sleep=sleeps.append, clock=lambda: 0.0))


def capability(version="4.0.1", resources=None, rest_params=None) -> dict:
    rest = {"mode": "server", "resource": resources or []}
    if rest_params is not None:
        rest["searchParam"] = [{"name": n, "type": "token"} for n in rest_params]
    return {"resourceType": "CapabilityStatement", "fhirVersion": version, "rest": [rest]}


def page(resources, next_url=None, modes=None) -> dict:
    entries = []
    for i, res in enumerate(resources):
        entries.append({"resource": res, "search": {"mode": (modes or {}).get(i, "match")}})
    links = [{"relation": "self", "url": "ignored"}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}


def med(i) -> dict:
    return {"resourceType": "MedicationAdministration", "id": str(i)}


def query_of(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


# -- capabilities ---------------------------------------------------------


@pytest.mark.parametrize("version", ["3.0.2", "5.0.0", "1.0.2", None])
@responses.activate
def test_capabilities_refuse_non_r4(client, version):
    responses.get(f"{BASE}/metadata", json=capability(version))

    with pytest.raises(FatalNetworkError) as info:
        client.capabilities()
    if version:
        assert version in str(info.value)
    assert "R4" in str(info.value)


@pytest.mark.parametrize("version", ["4.0.1", "4.0.0", "4.3.0"])
@responses.activate
def test_capabilities_accept_r4_and_r4b_and_cache(client, version):
    responses.get(f"{BASE}/metadata", json=capability(version))

    assert client.fhir_version == version
    client.capabilities()
    assert len(responses.calls) == 1


HAPI_LIKE = capability(
    resources=[
        {
            "type": "MedicationAdministration",
            "searchParam": [
                {"name": n, "type": "token"}
                for n in ("patient", "effective-time", "_id", "_lastUpdated")
            ],
            "searchInclude": [
                "*",
                "MedicationAdministration:medication",
                "MedicationAdministration:patient",
            ],
        },
        {
            "type": "Coverage",
            "searchParam": [{"name": "beneficiary", "type": "reference"}],
            "searchInclude": [],
        },
        {"type": "Basic", "searchParam": [{"name": "code", "type": "token"}]},
    ]
)


@responses.activate
def test_param_include_and_sort_detection(client):
    responses.get(f"{BASE}/metadata", json=HAPI_LIKE)

    assert client.supports_search_param("MedicationAdministration", "effective-time")
    assert client.supports_search_param("MedicationAdministration", "_lastUpdated")
    assert client.supports_search_param("Coverage", "beneficiary")
    assert not client.supports_search_param("Coverage", "_lastUpdated")
    assert not client.supports_search_param("Patient", "name")  # type not listed at all
    assert client.supports_include(
        "MedicationAdministration", "MedicationAdministration:request"
    )  # via *
    assert client.supports_include(
        "MedicationAdministration", "MedicationAdministration:medication"
    )
    assert not client.supports_include("Coverage", "Coverage:payor")
    assert client.supports_sort("MedicationAdministration")  # HAPI lists _lastUpdated, never _sort
    assert not client.supports_sort("Basic")


@responses.activate
def test_common_params_at_rest_level_count(client):
    responses.get(
        f"{BASE}/metadata",
        json=capability(
            resources=[{"type": "Coverage", "searchParam": []}],
            rest_params=["_id", "_lastUpdated", "_sort"],
        ),
    )

    assert client.supports_search_param("Coverage", "_id")
    assert client.supports_sort("Coverage", by="beneficiary")  # _sort advertised


# -- paging -----------------------------------------------------------------


@responses.activate
def test_search_pages_follows_next_links_verbatim(client):
    # odd but valid encodings a naive client would re-encode: %7C, a literal |, %2C
    next1 = (
        f"{BASE}?_getpages=abc-123&_getpagesoffset=2&_count=2&_bundletype=searchset&x=a%7Cb|c%2Cd"
    )
    next2 = f"{BASE}?_getpages=abc-123&_getpagesoffset=4&_count=2&_bundletype=searchset"
    responses.get(f"{BASE}/MedicationAdministration", json=page([med(1), med(2)], next1))
    responses.get(next1, json=page([med(3), med(4)], next2))
    responses.get(next2, json=page([med(5)]))

    pages = list(
        client.search_pages(
            "MedicationAdministration", {"_count": 2, "_lastUpdated": "ge2026-01-01"}
        )
    )

    assert [len(p["entry"]) for p in pages] == [2, 2, 1]
    assert len(responses.calls) == 3
    assert query_of(responses.calls[0]) == {"_count": ["2"], "_lastUpdated": ["ge2026-01-01"]}
    assert responses.calls[1].request.url == next1
    assert responses.calls[2].request.url == next2
    assert all(c.request.headers["Cache-Control"] == "no-cache" for c in responses.calls)


@responses.activate
def test_expired_paging_link_raises_paging_expired(client):
    next1 = f"{BASE}?_getpages=gone&_getpagesoffset=2&_count=2"
    hapi_gone = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "processing",
                "diagnostics": 'HAPI-0417: Search ID "gone" does not exist and may have expired',
            }
        ],
    }
    responses.get(f"{BASE}/MedicationAdministration", json=page([med(1), med(2)], next1))
    responses.get(next1, json=hapi_gone, status=410)

    seen = []
    with pytest.raises(PagingExpired) as info:
        for bundle in client.search_pages("MedicationAdministration", {"_count": 2}):
            seen.append(bundle)

    assert len(seen) == 1
    assert info.value.pages_yielded == 1 and info.value.status == 410
    assert isinstance(info.value, TemporaryNetworkError)


@responses.activate
def test_404_on_first_page_is_not_paging_expired(client):
    responses.get(f"{BASE}/Nope", status=404)

    with pytest.raises(FatalNetworkError) as info:
        list(client.search_pages("Nope", {}))
    assert info.value.status == 404


@responses.activate
def test_repeated_next_link_is_an_error_not_a_loop(client):
    loop = f"{BASE}?_getpages=loop&_getpagesoffset=2"
    responses.get(f"{BASE}/Claim", json=page([], loop))
    responses.get(loop, json=page([], loop))

    with pytest.raises(FatalNetworkError):
        list(client.search_pages("Claim", {}))
    assert len(responses.calls) == 2


@responses.activate
def test_search_yields_resources_with_modes(client):
    patient = {"resourceType": "Patient", "id": "p1"}
    outcome = {"resourceType": "OperationOutcome", "issue": []}
    responses.get(
        f"{BASE}/MedicationAdministration",
        json=page([med(1), patient, outcome], modes={1: "include", 2: "outcome"}),
    )

    results = [
        (r["resourceType"], mode)
        for r, mode in client.search("MedicationAdministration", {"_include": "x"})
    ]

    assert results == [
        ("MedicationAdministration", "match"),
        ("Patient", "include"),
        ("OperationOutcome", "outcome"),
    ]


# -- chunked reads ------------------------------------------------------------


def echo_ids(request):
    """Answer an _id / beneficiary search with one resource per requested value."""
    query = parse_qs(urlsplit(request.url).query)
    if request.method == "POST":  # POST <type>/_search: the parameters are the form body
        query = parse_qs(request.body.decode() if isinstance(request.body, bytes) else request.body)
    if "_id" in query:
        ids = query["_id"][0].split(",")
        return 200, {}, json.dumps(page([{"resourceType": "Patient", "id": i} for i in ids]))
    refs = query["beneficiary"][0].split(",")
    return (
        200,
        {},
        json.dumps(
            page([{"resourceType": "Coverage", "id": f"cov-{r.split('/')[1]}"} for r in refs])
        ),
    )


@responses.activate
def test_read_many_250_ids_in_3_requests(client):
    responses.add_callback(responses.GET, f"{BASE}/Patient", callback=echo_ids)
    ids = [str(i) for i in range(250)] + ["5", "17"]  # duplicates are dropped

    found = client.read_many("Patient", ids, chunk_size=100)

    assert len(responses.calls) == 3
    assert sorted(found, key=int) == [str(i) for i in range(250)]
    sizes = [len(query_of(c)["_id"][0].split(",")) for c in responses.calls]
    assert sizes == [100, 100, 50]
    assert [query_of(c)["_count"] for c in responses.calls] == [["100"], ["100"], ["50"]]


@responses.activate
def test_search_by_250_values_in_3_requests(client):
    responses.add_callback(responses.GET, f"{BASE}/Coverage", callback=echo_ids)
    refs = [f"Patient/{i}" for i in range(250)]

    coverages = list(client.search_by("Coverage", "beneficiary", refs, chunk_size=100))

    assert len(responses.calls) == 3
    assert len(coverages) == 250 and all(mode == "match" for _, mode in coverages)


@responses.activate
def test_read_many_sends_long_id_lists_as_post_search(client):
    responses.add_callback(responses.GET, f"{BASE}/Patient", callback=echo_ids)
    responses.add_callback(responses.POST, f"{BASE}/Patient/_search", callback=echo_ids)
    ids = [f"{i:04d}-" + "x" * 60 for i in range(200)]  # 100 of them make a ~6,600-character URL

    found = client.read_many("Patient", ids, chunk_size=100)

    assert len(found) == 200
    assert len(responses.calls) == 2  # requests grow with chunks, not with URL length
    for call in responses.calls:
        assert call.request.method == "POST" and call.request.url == f"{BASE}/Patient/_search"
        assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert call.request.headers["Cache-Control"] == "no-cache"
        assert len(call.request.url) < 100


@responses.activate
def test_short_id_lists_stay_get(client):
    responses.add_callback(responses.GET, f"{BASE}/Patient", callback=echo_ids)
    assert set(client.read_many("Patient", ["a", "b"])) == {"a", "b"}
    assert [c.request.method for c in responses.calls] == ["GET"]


@responses.activate
def test_read_many_follows_paging_within_a_chunk(client):
    next1 = f"{BASE}?_getpages=p&_getpagesoffset=2"
    responses.get(f"{BASE}/Patient", json=page([{"resourceType": "Patient", "id": "a"}], next1))
    responses.get(next1, json=page([{"resourceType": "Patient", "id": "b"}]))

    assert set(client.read_many("Patient", ["a", "b"])) == {"a", "b"}
    assert len(responses.calls) == 2


def test_read_many_with_no_ids_sends_nothing(client):
    with responses.RequestsMock() as mock:
        assert client.read_many("Patient", []) == {}
        assert len(mock.calls) == 0


# -- transactions -------------------------------------------------------------

CONDITIONAL_CREATE = {
    "resource": {"resourceType": "Claim"},
    "request": {"method": "POST", "url": "Claim", "ifNoneExist": "identifier=urn:x|1"},
}
PLAIN_CREATE = {"resource": {"resourceType": "Task"}, "request": {"method": "POST", "url": "Task"}}
PUT_ENTRY = {
    "resource": {"resourceType": "Task", "id": "t1"},
    "request": {"method": "PUT", "url": "Task/t1"},
}

RESPONSE_BUNDLE = {
    "resourceType": "Bundle",
    "type": "batch-response",
    "entry": [
        {"response": {"status": "201 Created", "location": "Claim/1/_history/1"}},
        {"response": {"status": "200 OK", "location": "Claim/2/_history/1"}},
        {
            "response": {
                "status": "412 Precondition Failed",
                "outcome": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "error",
                            "code": "duplicate",
                            "diagnostics": "HAPI-0958: multiple matches",
                        }
                    ],
                },
            }
        },
        {
            "response": {
                "status": "400",
                "outcome": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "error",
                            "code": "invalid",
                            "details": {"text": "Claim.patient: minimum 1"},
                        }
                    ],
                },
            }
        },
    ],
}


@responses.activate
def test_transaction_posts_bundle_and_parses_results(client):
    responses.post(BASE, json=RESPONSE_BUNDLE)

    response = client.transaction([CONDITIONAL_CREATE, PUT_ENTRY], kind="batch")

    sent = json.loads(responses.calls[0].request.body)
    assert sent["resourceType"] == "Bundle" and sent["type"] == "batch" and len(sent["entry"]) == 2
    assert responses.calls[0].request.headers["Content-Type"] == "application/fhir+json"
    assert (
        client.entry_results(response)
        == entry_results(response)
        == [
            (201, "Claim/1/_history/1", None),
            (200, "Claim/2/_history/1", None),
            (412, None, "HAPI-0958: multiple matches"),
            (400, None, "Claim.patient: minimum 1"),
        ]
    )


@responses.activate
def test_transaction_of_conditional_entries_is_retried(client, sleeps):
    responses.post(BASE, status=503)
    responses.post(
        BASE, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []}
    )

    client.transaction([CONDITIONAL_CREATE, PUT_ENTRY])

    assert len(responses.calls) == 2 and len(sleeps) == 1


@responses.activate
def test_transaction_with_plain_create_is_not_retried(client, sleeps):
    responses.post(BASE, status=503)

    with pytest.raises(TemporaryNetworkError):
        client.transaction([CONDITIONAL_CREATE, PLAIN_CREATE])
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_stats_exposed(client):
    responses.get(f"{BASE}/metadata", json=capability())
    client.capabilities()
    assert client.stats.as_dict()["requests"] == 1
    assert client.stats.as_dict()["by_status"] == {"200": 1}


# -- send_in_halves: the one way a refused Bundle is split --------------------------------------


def _halving_run(items, bad, status=400):
    from fhir_injection.fhir.bundles import send_in_halves

    bundles, alone = [], []

    def send_bundle(part):
        bundles.append(list(part))
        if bad & set(part):
            raise FatalNetworkError("refused", status=status)

    send_in_halves(items, send_bundle, alone.append)
    return bundles, alone


def test_one_bad_entry_in_64_costs_a_few_halves_and_lands_the_rest():
    bundles, alone = _halving_run(list(range(64)), {37})
    landed = {i for b in bundles if 37 not in b for i in b} | set(alone)
    assert landed == set(
        range(64)
    )  # every entry reached the server exactly once, the bad one alone
    assert alone == [36, 37]  # the bad entry and its innocent neighbour of the last refused pair
    assert (
        len(bundles) == 11 and len(alone) == 2
    )  # 1 + 2·(log2(64) − 1) Bundles, the culprit's pair alone
    assert sum(len(b) for b in bundles if 37 not in b) + len(alone) == 64


def test_a_refused_bundle_of_one_is_sent_alone_and_an_empty_one_not_at_all():
    bundles, alone = _halving_run(["x"], {"x"})
    assert bundles == [["x"]] and alone == ["x"]
    bundles, alone = _halving_run([], set())
    assert bundles == [] and alone == []


@pytest.mark.parametrize("status", [None, 401, 403, 500, 503])
def test_failures_not_about_the_content_stop_instead_of_halving(status):
    with pytest.raises(FatalNetworkError):
        _halving_run(list(range(8)), {3}, status=status)


@pytest.mark.parametrize(
    "status,refused",
    [
        (400, True),
        (404, True),
        (409, True),
        (412, True),
        (422, True),
        (401, False),
        (403, False),
        (500, False),
        (502, False),
        (None, False),
    ],
)
def test_refused_content_is_a_4xx_other_than_auth(status, refused):
    assert FatalNetworkError("x", status=status).refused_content is refused
