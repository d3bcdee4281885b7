"""worklist.csv: one row per gap, shaped for Excel, no formula injection."""

from __future__ import annotations

import csv
import io

import pytest

from fhir_injection.sinks.view import WorklistRow
from fhir_injection.sinks.worklist import COLUMNS, neutralise, write_worklist


def row(**changes) -> WorklistRow:
    base = dict(
        service_date="2026-10-05",
        administration="MedicationAdministration/ma-1",
        outcome="held",
        severity="error",
        gap="missing-dose",
        field="MedicationAdministration.dosage.dose",
        message="dosage.dose has no value with a unit. Document the amount given.",
        clinician="Practitioner/nurse",
        payer_type="medicare",
        hcpcs="J1885",
        estimated_usd=15.36,
        task="Task/fi-task-1",
        claim="Claim/fi-claim-1",
    )
    base.update(changes)
    return WorklistRow(**base)


def written(rows, source=None, target=None) -> bytes:
    buf = io.BytesIO()
    text = io.TextIOWrapper(buf, encoding="utf-8-sig", newline="")
    write_worklist(text, rows, source, target)
    text.flush()
    return buf.getvalue()


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        "+1",
        "-1",
        "@SUM(A1)",
        "\tx",
        "\rx",
        '=HYPERLINK("http://evil.example/","click")',
        "-2+3",
    ],
)
def test_a_cell_a_spreadsheet_would_evaluate_is_prefixed_with_a_quote(cell):
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize(
    "cell",
    ["", "J1885", "Practitioner/nurse", "a=b", "x-1", "'=1", " =1", "<script>alert(1)</script>"],
)
def test_other_cells_are_left_as_they_are(cell):
    assert neutralise(cell) == cell


def test_the_file_opens_cleanly_in_excel_bom_crlf_and_quoted_fields():
    message = 'Route text "IM, left arm"\nsecond line'
    data = written([row(), row(message=message, gap="missing-route")])
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads UTF-8
    lines = data[3:].split(b"\r\n")
    assert lines[0].decode() == ",".join(COLUMNS)
    assert lines[-1] == b""  # every record ends with CRLF
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert len(rows) == 2
    assert rows[1]["what_to_fix"] == message  # commas, quotes and a newline survive quoting
    assert rows[0]["estimated_usd"] == "15.36"
    assert (
        rows[0]["gap"] == "missing-dose"
        and rows[0]["field"] == "MedicationAdministration.dosage.dose"
    )


def test_every_text_column_is_neutralised():
    evil = "=cmd|' /C calc'!A0"
    data = written(
        [
            row(
                **{
                    k: evil
                    for k in (
                        "service_date",
                        "administration",
                        "outcome",
                        "severity",
                        "gap",
                        "field",
                        "message",
                        "clinician",
                        "payer_type",
                        "hcpcs",
                        "task",
                        "claim",
                        "filing_deadline",
                    )
                }
            )
        ]
    )
    (parsed,) = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    for column, value in parsed.items():
        if column in ("estimated_usd", "days_left", "administration_url", "task_url"):
            continue
        assert value == "'" + evil, column


def test_links_to_the_server_only_with_a_base_and_with_the_id_encoded():
    data = written(
        [row(administration="MedicationAdministration/a b", task="Task/t/1")],
        "https://ehr.example.org/fhir",
        "https://billing.example.org/fhir",
    )
    (parsed,) = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    assert (
        parsed["administration_url"]
        == "https://ehr.example.org/fhir/MedicationAdministration/a%20b"
    )
    assert parsed["task_url"] == "https://billing.example.org/fhir/Task/t%2F1"
    (plain,) = csv.DictReader(io.StringIO(written([row()]).decode("utf-8-sig"), newline=""))
    assert plain["administration_url"] == plain["task_url"] == ""
