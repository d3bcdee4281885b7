"""The Bulk Data $export client (fhir_injection.sources.bulk), the ``export`` command and the
``export`` pull, against ``responses``: what a real server cannot be made to do on demand
(Retry-After forms, 429/5xx, redirects to another host, corrupted gzip, deleted files, a kill)."""

from __future__ import annotations

import email.utils
import gzip
import json
import logging
import random
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from fhir_injection import cli
from fhir_injection.decision.practice import Config
from fhir_injection.errors import BulkExportError
from fhir_injection.fhir.auth import BearerAuth
from fhir_injection.fhir.client import FhirClient
from fhir_injection.fhir.http import HttpSession
from fhir_injection.fhir.urls import credentials_allowed
from fhir_injection.jobs.state import StateFile
from fhir_injection.jobs.sync import SyncOptions, run_sync
from fhir_injection.sources import bulk as bulk_module
from fhir_injection.sources import download as download_module
from fhir_injection.sources.bulk import BulkExport, ExportRequest
from fhir_injection.sources.exportfolder import ExportFolder
from tests.builders import rules as load_bundled_rules
from tests.fakefhir import BASE as FAKE_BASE
from tests.fakefhir import FakeFhir

BASE = "https://ehr.example/fhir"
STATUS = f"{BASE}/$export-poll-status?_jobId=j1"
FILES = "https://ehr.example/files"
BUCKET = "https://bucket.example/exports"
TOKEN = "Bearer secret-token"
T = "2026-11-30T10:00:00.000Z"


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def ndjson(*resources) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in resources)


def patient(i: int) -> dict:
    return {
        "resourceType": "Patient",
        "id": f"p{i}",
        "name": [{"family": "Doe", "given": ["Jane"]}],
    }


def manifest(output=(), error=(), deleted=(), token=False, when=T) -> dict:
    return {
        "transactionTime": when,
        "request": f"{BASE}/$export",
        "requiresAccessToken": token,
        "output": [{"type": t, "url": u} for t, u in output],
        "error": [{"type": "OperationOutcome", "url": u} for u in error],
        **({"deleted": [{"type": "Bundle", "url": u} for u in deleted]} if deleted else {}),
    }


class Clock:
    def __init__(self):
        self.sleeps: list[float] = []
        self.now = 0.0

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s

    def clock(self) -> float:
        return self.now


def client_for(clock: Clock, auth=None) -> FhirClient:
    return FhirClient(HttpSession(BASE, auth=auth, sleep=clock.sleep, clock=clock.clock))


def exporter(clock: Clock, memory=None, auth=None, progress=None, **kw) -> BulkExport:
    return BulkExport(
        client_for(clock, auth),
        memory if memory is not None else {},
        sleep=clock.sleep,
        clock=clock.clock,
        progress=progress if progress is not None else (lambda m: None),
        **kw,
    )


def kick_off(rsps, status=STATUS, path="$export"):
    rsps.add(
        responses.GET,
        re.compile(re.escape(f"{BASE}/{path}") + r"(\?.*)?$"),
        status=202,
        headers={"Content-Location": status},
    )


def done(rsps, body: dict | str, status_url=STATUS):
    text = body if isinstance(body, str) else json.dumps(body)
    rsps.add(responses.GET, status_url, body=text, status=200, content_type="application/json")


def file(rsps, url: str, body: bytes, gz: bool = True, status: int = 200, headers=None):
    data = gzip.compress(body) if gz else body
    rsps.add(
        responses.GET,
        url,
        body=data,
        status=status,
        headers={**({"Content-Encoding": "gzip"} if gz else {}), **(headers or {})},
        content_type="application/fhir+ndjson",
    )


def calls(rsps, method="GET", starts=BASE + "/$export?"):
    return [
        c for c in rsps.calls if c.request.method == method and c.request.url.startswith(starts)
    ]


def simple_export(rsps, token=False):
    kick_off(rsps)
    done(rsps, manifest([("Patient", f"{FILES}/1")], token=token))
    file(rsps, f"{FILES}/1", ndjson(patient(1), patient(2)))
    rsps.add(responses.DELETE, STATUS, status=202)


# --------------------------------------------------------------------------- kick-off


def test_kickoff_sends_prefer_accept_and_parameters(rsps, tmp_path):
    kick_off(rsps, path="Group/g1/$export")
    done(rsps, manifest())
    rsps.add(responses.DELETE, STATUS, status=202)
    req = ExportRequest(
        "group",
        group="g1",
        types=("Patient", "Encounter"),
        since=T,
        type_filters=("Encounter?status=finished", "Patient?active=true"),
    )
    exporter(Clock()).run(req, tmp_path / "out")
    first = next(c for c in rsps.calls if "/Group/g1/$export" in c.request.url).request
    assert first.headers["Prefer"] == "respond-async"
    assert first.headers["Accept"] == "application/fhir+json"
    query = parse_qs(urlsplit(first.url).query)
    assert query["_type"] == ["Patient,Encounter"]  # one comma-joined parameter
    assert query["_since"] == [T]
    assert query["_typeFilter"] == ["Encounter?status=finished", "Patient?active=true"]


def test_levels_have_their_paths():
    assert ExportRequest().path == "$export"
    assert ExportRequest("patient").path == "Patient/$export"
    assert ExportRequest("group", group="7").path == "Group/7/$export"
    with pytest.raises(ValueError):
        ExportRequest("group")


def test_kickoff_429_is_waited_out(rsps, tmp_path):
    url = re.compile(re.escape(f"{BASE}/$export") + r"(\?.*)?$")
    rsps.add(responses.GET, url, status=429, headers={"Retry-After": "9"})
    kick_off(rsps)
    done(rsps, manifest())
    rsps.add(responses.DELETE, STATUS, status=202)
    clock = Clock()
    exporter(clock).run(ExportRequest(), tmp_path / "out")
    assert clock.sleeps[0] == 9
    assert len(calls(rsps)) == 2


def test_kickoff_without_content_location_is_a_clear_error(rsps, tmp_path):
    rsps.add(
        responses.GET,
        re.compile(re.escape(f"{BASE}/$export") + r".*"),
        status=200,
        json={"resourceType": "Bundle"},
    )
    with pytest.raises(BulkExportError, match=r"did not start an export.*Content-Location"):
        exporter(Clock()).run(ExportRequest(), tmp_path / "out")


# --------------------------------------------------------------------------- polling


def in_progress(rsps, **headers):
    rsps.add(responses.GET, STATUS, status=202, headers=headers)


def test_poll_honours_retry_after_seconds_and_shows_x_progress(rsps, tmp_path):
    kick_off(rsps)
    in_progress(rsps, **{"Retry-After": "7", "X-Progress": "40% done"})
    in_progress(rsps, **{"Retry-After": "3"})
    done(rsps, manifest())
    rsps.add(responses.DELETE, STATUS, status=202)
    clock, shown = Clock(), []
    exporter(clock, progress=shown.append).run(ExportRequest(), tmp_path / "out")
    assert clock.sleeps == [7, 3]
    assert any("40% done" in m and "next check in 7 s" in m for m in shown)


def test_poll_honours_retry_after_as_http_date(rsps, tmp_path):
    kick_off(rsps)
    now = 1_780_000_000
    in_progress(
        rsps,
        **{
            "Date": email.utils.formatdate(now, usegmt=True),
            "Retry-After": email.utils.formatdate(now + 30, usegmt=True),
        },
    )
    done(rsps, manifest())
    rsps.add(responses.DELETE, STATUS, status=202)
    clock = Clock()
    exporter(clock).run(ExportRequest(), tmp_path / "out")
    assert clock.sleeps == [30]


def test_poll_wait_is_capped_and_defaults_when_absent(rsps, tmp_path):
    kick_off(rsps)
    in_progress(rsps, **{"Retry-After": "18000"})  # five hours, as one vendor asked
    in_progress(rsps)
    done(rsps, manifest())
    rsps.add(responses.DELETE, STATUS, status=202)
    clock = Clock()
    exporter(clock).run(ExportRequest(), tmp_path / "out")
    assert clock.sleeps == [bulk_module.MAX_POLL_WAIT, bulk_module.DEFAULT_POLL_WAIT]
    assert bulk_module.MAX_POLL_WAIT == 120


def test_poll_5xx_is_retried(rsps, tmp_path):
    kick_off(rsps)
    rsps.add(responses.GET, STATUS, status=503, headers={"Retry-After": "2"})
    done(rsps, manifest())
    rsps.add(responses.DELETE, STATUS, status=202)
    clock = Clock()
    result = exporter(clock).run(ExportRequest(), tmp_path / "out")
    assert clock.sleeps == [2]
    assert result.manifest.transaction_time == T


def test_failed_export_is_forgotten_unreachable_one_is_kept(rsps, tmp_path):
    kick_off(rsps)
    rsps.add(
        responses.GET,
        STATUS,
        status=400,
        json={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "too-costly", "diagnostics": "too big"}],
        },
    )
    memory: dict = {}
    with pytest.raises(BulkExportError, match=r"the export failed.*too big"):
        exporter(Clock(), memory).run(ExportRequest(), tmp_path / "out")
    assert "status_url" not in memory["exports"]["$export"]
    rsps.replace(responses.GET, STATUS, body=requests.ConnectionError("down"))
    memory2: dict = {}
    with pytest.raises(BulkExportError):
        exporter(Clock(), memory2).run(ExportRequest(), tmp_path / "out2")
    assert memory2["exports"]["$export"]["status_url"] == STATUS


# --------------------------------------------------------------------------- resume, state


def test_killed_run_resumes_the_same_export(rsps, tmp_path):
    state_path = tmp_path / "state.json"
    kick_off(rsps)
    in_progress(rsps, **{"Retry-After": "5"})
    clock = Clock()

    def killed(seconds):
        raise KeyboardInterrupt  # the run is killed while it waits

    state = StateFile(state_path)
    entry = state.source(BASE)
    run = BulkExport(
        client_for(clock),
        entry,
        state.save,
        sleep=killed,
        clock=clock.clock,
        progress=lambda m: None,
    )
    with pytest.raises(KeyboardInterrupt):
        run.run(ExportRequest(), tmp_path / "out")
    saved = json.loads(state_path.read_text())["sources"][BASE]["exports"]["$export"]
    assert saved["status_url"] == STATUS

    rsps.replace(
        responses.GET,
        STATUS,
        body=json.dumps(manifest([("Patient", f"{FILES}/1")])),
        status=200,
        content_type="application/json",
    )
    file(rsps, f"{FILES}/1", ndjson(patient(1)))
    rsps.add(responses.DELETE, STATUS, status=202)
    state = StateFile(state_path)  # a new process
    result = BulkExport(
        client_for(clock),
        state.source(BASE),
        state.save,
        sleep=clock.sleep,
        clock=clock.clock,
        progress=lambda m: None,
    ).run(ExportRequest(), tmp_path / "out")
    assert result.resumed
    assert len(calls(rsps)) == 1  # one kick-off in all
    saved = json.loads(state_path.read_text())["sources"][BASE]["exports"]["$export"]
    assert "status_url" not in saved
    assert saved["since"] == T


def test_expired_export_on_resume_starts_a_new_one(rsps, tmp_path):
    memory = {"exports": {"$export": {"status_url": f"{BASE}/old-status"}}}
    rsps.add(responses.GET, f"{BASE}/old-status", status=410)
    simple_export(rsps)
    result = exporter(Clock(), memory).run(ExportRequest(), tmp_path / "out")
    assert not result.resumed
    assert len(calls(rsps)) == 1
    assert memory["exports"]["$export"]["since"] == T


def test_transaction_time_is_the_next_since_of_the_export_command(rsps, tmp_path, capsys):
    simple_export(rsps)
    state = tmp_path / "state.json"
    args = ["export", "--source", BASE, "--state", str(state)]
    assert cli.main([*args, "--target", str(tmp_path / "one")]) == 0
    assert "_since" not in parse_qs(urlsplit(calls(rsps)[0].request.url).query)
    assert cli.main([*args, "--target", str(tmp_path / "two")]) == 0
    assert parse_qs(urlsplit(calls(rsps)[1].request.url).query)["_since"] == [T]
    assert cli.main([*args, "--target", str(tmp_path / "two")]) == 2  # not a new folder
    assert "not empty" in capsys.readouterr().err


def test_job_is_deleted_after_download(rsps, tmp_path):
    simple_export(rsps)
    exporter(Clock()).run(ExportRequest(), tmp_path / "out")
    methods = [(c.request.method, c.request.url.split("?")[0]) for c in rsps.calls]
    assert methods[-1] == ("DELETE", f"{BASE}/$export-poll-status")
    assert methods.index(("GET", f"{FILES}/1")) < len(methods) - 1


# --------------------------------------------------------------------------- manifest


@pytest.mark.parametrize(
    "body, why",
    [
        ("{not json", "not JSON"),
        (json.dumps({"requiresAccessToken": False, "output": []}), "no transactionTime"),
        (json.dumps({"transactionTime": T, "output": []}), "requiresAccessToken"),
        (
            json.dumps(
                {
                    "transactionTime": T,
                    "requiresAccessToken": False,
                    "output": [{"type": "Patient", "url": "Patient.ndjson"}],
                }
            ),
            "no absolute url",
        ),
        (
            json.dumps({"transactionTime": T, "requiresAccessToken": False, "output": {}}),
            "not a list",
        ),
    ],
)
def test_bad_manifest_is_a_clear_message(rsps, tmp_path, body, why):
    kick_off(rsps)
    done(rsps, body)
    with pytest.raises(BulkExportError, match="manifest is not usable") as err:
        exporter(Clock()).run(ExportRequest(), tmp_path / "out")
    assert why in str(err.value)


# --------------------------------------------------------------------------- downloads, auth


def test_requires_access_token_true_sends_it_to_the_fhir_server_only(rsps, tmp_path):
    kick_off(rsps)
    done(rsps, manifest([("Patient", f"{FILES}/1")], token=True))
    file(rsps, f"{FILES}/1", ndjson(patient(1)))
    rsps.add(responses.DELETE, STATUS, status=202)
    exporter(Clock(), auth=BearerAuth("secret-token")).run(ExportRequest(), tmp_path / "out")
    got = next(c for c in rsps.calls if c.request.url == f"{FILES}/1").request
    assert got.headers["Authorization"] == TOKEN
    assert got.headers["Accept-Encoding"] == "gzip"


def test_requires_access_token_false_sends_no_token(rsps, tmp_path):
    simple_export(rsps, token=False)
    exporter(Clock(), auth=BearerAuth("secret-token")).run(ExportRequest(), tmp_path / "out")
    got = next(c for c in rsps.calls if c.request.url == f"{FILES}/1").request
    assert "Authorization" not in got.headers


def test_token_required_on_another_host_is_refused(rsps, tmp_path):
    kick_off(rsps)
    done(rsps, manifest([("Patient", f"{BUCKET}/1")], token=True))
    with pytest.raises(BulkExportError, match="refusing to send credentials to another host"):
        exporter(Clock(), auth=BearerAuth("secret-token")).run(ExportRequest(), tmp_path / "out")
    assert not [c for c in rsps.calls if c.request.url.startswith(BUCKET)]


def test_redirect_to_another_host_gets_no_authorization(rsps, tmp_path):
    kick_off(rsps)
    done(rsps, manifest([("Patient", f"{FILES}/1")], token=True))
    signed = f"{BUCKET}/1?X-Amz-Signature=abc&X-Amz-Expires=300"
    rsps.add(responses.GET, f"{FILES}/1", status=307, headers={"Location": signed})
    file(rsps, signed, ndjson(patient(1)))
    rsps.add(responses.DELETE, STATUS, status=202)
    result = exporter(Clock(), auth=BearerAuth("secret-token")).run(
        ExportRequest(), tmp_path / "out"
    )
    first = next(c for c in rsps.calls if c.request.url == f"{FILES}/1").request
    bucket = next(c for c in rsps.calls if c.request.url.startswith(BUCKET)).request
    assert first.headers["Authorization"] == TOKEN
    assert "Authorization" not in bucket.headers
    assert bucket.url == signed  # byte for byte
    assert result.lines["Patient"] == 1
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "X-Amz-Signature" not in json.dumps(written)  # the signature is a credential


def test_same_host_presigned_redirect_gets_no_authorization(rsps, tmp_path):
    kick_off(rsps)
    done(rsps, manifest([("Patient", f"{FILES}/1")], token=True))
    signed = f"{FILES}/blob/1?sig=abc"
    rsps.add(responses.GET, f"{FILES}/1", status=302, headers={"Location": signed})
    file(rsps, signed, ndjson(patient(1)))
    rsps.add(responses.DELETE, STATUS, status=202)
    exporter(Clock(), auth=BearerAuth("secret-token")).run(ExportRequest(), tmp_path / "out")
    got = next(c for c in rsps.calls if c.request.url == signed).request
    assert "Authorization" not in got.headers
    assert credentials_allowed(f"{FILES}/blob/2", ("https", "ehr.example"))
    assert not credentials_allowed(f"{FILES}/blob/2?X-Goog-Signature=1", ("https", "ehr.example"))


def test_requests_itself_strips_authorization_on_a_host_change(rsps):
    """What requests does by default (Session.rebuild_auth), checked: our own downloads follow
    redirects themselves, but every other GET of the session relies on this."""
    rsps.add(responses.GET, f"{BASE}/x", status=307, headers={"Location": f"{BUCKET}/x"})
    rsps.add(responses.GET, f"{BUCKET}/x", body="ok")
    requests.Session().get(f"{BASE}/x", headers={"Authorization": TOKEN})
    assert rsps.calls[0].request.headers["Authorization"] == TOKEN
    assert "Authorization" not in rsps.calls[1].request.headers


def test_file_5xx_is_retried(rsps, tmp_path):
    kick_off(rsps)
    done(rsps, manifest([("Patient", f"{FILES}/1")]))
    rsps.add(responses.GET, f"{FILES}/1", status=502)
    file(rsps, f"{FILES}/1", ndjson(patient(1)))
    rsps.add(responses.DELETE, STATUS, status=202)
    result = exporter(Clock()).run(ExportRequest(), tmp_path / "out")
    assert result.lines["Patient"] == 1


def test_downloads_stream_in_bounded_chunks(rsps, tmp_path, monkeypatch):
    noise = random.Random(13)  # little to compress: the gzip file is large too
    body = ndjson(
        *(
            {
                "resourceType": "Patient",
                "id": f"p{i}",
                "text": {"div": f"{noise.getrandbits(1600):x}"},
            }
            for i in range(3000)
        )
    )
    kick_off(rsps)
    done(rsps, manifest([("Patient", f"{FILES}/1"), ("Patient", f"{FILES}/2")]))
    file(rsps, f"{FILES}/1", body)  # gzip as sent
    file(rsps, f"{FILES}/2", body, gz=False)  # plain: compressed on the way
    rsps.add(responses.DELETE, STATUS, status=202)
    writes: list[int] = []
    real_open = open

    class Tracked:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            writes.append(len(data))
            return self.fh.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(
        download_module, "open", lambda p, m: Tracked(real_open(p, m)), raising=False
    )
    result = exporter(Clock(), chunk_size=4096).run(ExportRequest(), tmp_path / "out")
    out = tmp_path / "out"
    assert gzip.decompress((out / "1.Patient.ndjson.gz").read_bytes()) == body
    assert gzip.decompress((out / "2.Patient.ndjson.gz").read_bytes()) == body
    size = (out / "2.Patient.ndjson.gz").stat().st_size
    assert size > 500_000 and len(writes) > 100
    # chunk by chunk (gzip as sent), or as zlib releases compressed blocks: never a whole file
    assert max(writes) <= 64 * 1024 < size / 8
    assert result.lines["Patient"] == 6000
    # the folder is what sync --source DIR reads: both files of the type, the manifest understood
    folder = ExportFolder(out, lambda p: pytest.fail(str(p)))
    assert sum(1 for _ in folder.records()) == 6000  # both files of the type are read
    roles = {f["file"]: f["role"] for f in folder.files}
    assert roles == {
        "manifest.json": "manifest",
        "1.Patient.ndjson.gz": "records",
        "2.Patient.ndjson.gz": "records",
    }


def test_corrupted_gzip_names_the_file(rsps, tmp_path):
    kick_off(rsps)
    done(rsps, manifest([("Patient", f"{FILES}/1"), ("Encounter", f"{FILES}/2")]))
    file(rsps, f"{FILES}/1", ndjson(patient(1)))
    good = gzip.compress(ndjson(patient(2)) * 50)
    rsps.add(
        responses.GET,
        f"{FILES}/2",
        body=good[:12] + b"\x00garbage" + good[20:],
        headers={"Content-Encoding": "gzip"},
    )
    with pytest.raises(BulkExportError) as err:
        exporter(Clock(), concurrency=1).run(ExportRequest(), tmp_path / "out")
    text = str(err.value)
    assert "file 2 of 2 (output Encounter" in text and f"{FILES}/2" in text
    assert "gzip" in text
    assert not (tmp_path / "out" / "1.Encounter.ndjson.gz").exists()
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_cut_short_gzip_names_the_file(rsps, tmp_path):
    kick_off(rsps)
    done(rsps, manifest([("Patient", f"{FILES}/1")]))
    data = gzip.compress(ndjson(*(patient(i) for i in range(200))))
    rsps.add(
        responses.GET,
        f"{FILES}/1",
        body=data[: len(data) // 2],
        headers={"Content-Encoding": "gzip"},
    )
    with pytest.raises(BulkExportError, match=r"file 1 of 1 \(output Patient.*cut short"):
        exporter(Clock()).run(ExportRequest(), tmp_path / "out")


def test_error_files_are_counted_by_issue_code_without_phi(rsps, tmp_path, caplog):
    kick_off(rsps)
    done(rsps, manifest([("Patient", f"{FILES}/1")], error=[f"{FILES}/e1"]))
    file(rsps, f"{FILES}/1", ndjson(patient(1)))
    phi = "Patient Jane Doe (MRN 12345) could not be exported"
    oo = [
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": c, "diagnostics": phi}],
        }
        for c in ("not-found", "not-found", "processing")
    ]
    file(rsps, f"{FILES}/e1", ndjson(*oo))
    rsps.add(responses.DELETE, STATUS, status=202)
    shown: list[str] = []
    with caplog.at_level(logging.DEBUG):
        result = exporter(Clock(), progress=shown.append).run(ExportRequest(), tmp_path / "out")
    assert dict(result.errors) == {"not-found": 2, "processing": 1}
    assert "not-found 2, processing 1" in result.summary()
    everything = result.summary() + "\n".join(shown) + caplog.text
    assert "Jane" not in everything and "12345" not in everything
    assert (tmp_path / "out" / "error" / "1.OperationOutcome.ndjson.gz").is_file()


def test_no_phi_in_failure_messages(rsps, tmp_path):
    kick_off(rsps)
    done(rsps, manifest([("Patient", f"{FILES}/1?patient=Jane-Doe")]))
    rsps.add(responses.GET, f"{FILES}/1?patient=Jane-Doe", status=403, body=ndjson(patient(1)))
    with pytest.raises(BulkExportError) as err:
        exporter(Clock()).run(ExportRequest(), tmp_path / "out")
    assert "Jane" not in str(err.value) and "Doe" not in str(err.value)
    assert "403" in str(err.value)


# --------------------------------------------------------------------------- deleted -> voids


def test_deleted_entries_void_claims_in_a_sync_with_the_export_pull(tmp_path):
    """A sync by search posts Claims; an export whose deleted file lists one administration then
    cancels that Claim (a void), and posts no second Claim for the rest."""
    from tests.fakesync import clinic

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        server = FakeFhir().install(rsps)
        admins = clinic(server, patients=3, per_patient=2)
        rules, config = load_bundled_rules(), Config()
        client = FhirClient(HttpSession(FAKE_BASE, sleep=lambda s: None, clock=lambda: 0.0))

        def opts(pull):
            return SyncOptions(
                page_size=20,
                created="2026-10-06T12:00:00Z",
                pull=pull,
                state_path=str(tmp_path / "state.json"),
                report_path=str(tmp_path / f"report-{pull}.json"),
            )

        first = run_sync(client, client, rules, config, opts("search"))
        assert first.claims.created == 6
        gone = admins[0]["id"]
        status = f"{FAKE_BASE}/export-status/1"
        out = [
            r
            for t in (
                "Patient",
                "Encounter",
                "Coverage",
                "Practitioner",
                "Organization",
                "Location",
                "Condition",
                "Medication",
                "Consent",
                "ChargeItem",
            )
            for r in server.all(t)
        ]
        out += [a for a in server.all("MedicationAdministration") if a["id"] != gone]
        body = {
            "transactionTime": T,
            "requiresAccessToken": False,
            "output": [{"type": "Bundle", "url": f"{FILES}/all"}],
            "deleted": [{"type": "Bundle", "url": f"{FILES}/deleted"}],
        }
        body["output"][0]["type"] = "Patient"  # a file of mixed types, named by its first

        def hook(method, path, query):
            if path == "$export":
                return 202, {"Content-Location": status}, None
            if path == "export-status/1":
                return 200, {"Content-Type": "application/json"}, body
            return None

        server.fail.append(hook)
        rsps.add(responses.DELETE, status, status=202)
        file(rsps, f"{FILES}/all", ndjson(*out))
        deleted = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": f"MedicationAdministration/{gone}"}}],
        }
        file(rsps, f"{FILES}/deleted", ndjson(deleted))
        second = run_sync(client, client, rules, config, opts("export"))
        claims = server.all("Claim")
        assert len(claims) == 6  # none twice
        cancelled = [c for c in claims if c["status"] == "cancelled"]
        assert len(cancelled) == 1
        assert gone in json.dumps(cancelled[0]["identifier"])
        assert second.claims.cancelled == 1 and second.claims.created == 0
        report = json.loads((tmp_path / "report-export.json").read_text())
        voided = [d for d in report["administrations"] if d["outcome"] == "void"]
        assert [d["administration"] for d in voided] == [f"MedicationAdministration/{gone}"]
        assert voided[0]["deleted_in"].startswith("deleted/1.Bundle.ndjson.gz")
        state = json.loads((tmp_path / "state.json").read_text())["sources"][FAKE_BASE]
        job = state["exports"][next(iter(state["exports"]))]
        assert job["since"] == T and "downloaded" not in job
        assert any(c.request.method == "DELETE" and c.request.url == status for c in rsps.calls)
        assert not Path(str(tmp_path / "state.json") + ".export").exists()


def test_a_run_stopped_during_downloads_fetches_only_what_is_missing(rsps, tmp_path):
    kick_off(rsps)
    done(rsps, manifest([("Patient", f"{FILES}/1"), ("Encounter", f"{FILES}/2")]))
    file(rsps, f"{FILES}/1", ndjson(patient(1)))
    rsps.add(responses.GET, f"{FILES}/2", status=403)
    memory: dict = {}
    with pytest.raises(BulkExportError, match=r"file 2 of 2 \(output Encounter"):
        exporter(Clock(), memory, concurrency=1).run(ExportRequest(), tmp_path / "out")
    assert memory["exports"]["$export"]["status_url"] == STATUS  # kept: the export is still good
    assert (tmp_path / "out" / "1.Patient.ndjson.gz").is_file()
    assert not (tmp_path / "out" / "manifest.json").exists()

    rsps.replace(
        responses.GET,
        f"{FILES}/2",
        body=gzip.compress(ndjson({"resourceType": "Encounter", "id": "e1"})),
        headers={"Content-Encoding": "gzip"},
    )
    rsps.add(responses.DELETE, STATUS, status=202)
    result = exporter(Clock(), memory, concurrency=1).run(ExportRequest(), tmp_path / "out")
    assert result.resumed and dict(result.lines) == {"Patient": 1, "Encounter": 1}
    assert len([c for c in rsps.calls if c.request.url == f"{FILES}/1"]) == 1  # not fetched again
    assert len(calls(rsps)) == 1  # one kick-off
    assert (tmp_path / "out" / "manifest.json").is_file()
