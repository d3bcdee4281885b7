"""mappings/ is validated on load: a broken table names its file and row (MappingError)."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_injection import Config, MappingError, load_config, load_rules
from fhir_injection.errors import EXIT_MAPPINGS, ConfigError

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@pytest.fixture
def mappings(tmp_path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


def edit(directory: Path, name: str, old: str, new: str, count: int = 1) -> None:
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def row_of(directory: Path, name: str, needle: str) -> int:
    for number, text in enumerate(
        (directory / name).read_text(encoding="utf-8").splitlines(), start=1
    ):
        if needle in text:
            return number
    raise AssertionError(needle)


def test_bundled_mappings_load():
    rules = load_rules()
    assert rules.drugs["J0171"].unit_amount == Decimal("0.1")
    assert (
        rules.drug_codes[("http://www.nlm.nih.gov/research/umls/rxnorm", "35827")].hcpcs == "J1885"
    )
    assert rules.payer("medicare").distinct_modifier == "XU"
    assert rules.payer(None).payer_type == "commercial"
    assert rules.payer("medicare").mue_96372 == 4
    assert (
        rules.is_em("99211")
        and rules.is_em("99499")
        and not rules.is_em("96372")
        and not rules.is_em("G0008")
    )
    assert rules.fee("J1885", "office").amount == Decimal("0.30")  # '*' row
    assert rules.fee("96372", "office").amount == Decimal("15.36")
    assert rules.gap_codesystem_url
    assert ("medicare", "influenza") in rules.vaccine_admin


def test_rules_are_immutable():
    rules = load_rules()
    with pytest.raises(TypeError):
        rules.drugs["J9999"] = None  # type: ignore[index]


def test_every_table_row_names_a_source_and_every_drug_code_a_known_hcpcs():
    rules = load_rules()
    assert all(code.hcpcs in rules.drugs for code in rules.drug_codes.values())


@pytest.mark.parametrize(
    "name,old,new,needle,message",
    [
        (
            "drugs.csv",
            'J0696,"Injection, ceftriaxone sodium, per 250 mg",250,',
            'J0696,"Injection, ceftriaxone sodium, per 250 mg",abc,',
            "J0696",
            "not a number",
        ),
        (
            "drugs.csv",
            'J1885,"Injection, ketorolac tromethamine, per 15 mg",15,',
            'J1885,"Injection, ketorolac tromethamine, per 15 mg",-15,',
            "J1885",
            "positive",
        ),
        (
            "drugs.csv",
            "15,mg,standard,yes,no,ketorolac",
            "15,mg,standard,maybe,no,ketorolac",
            "J1885",
            "single_dose",
        ),
        (
            "drugs.csv",
            "15,mg,standard,yes,no,ketorolac",
            "15,furlongs,standard,yes,no,ketorolac",
            "J1885",
            "unit",
        ),
        (
            "routes.csv",
            "34206005,Subcutaneous route,subcutaneous",
            "34206005,Subcutaneous route,under-the-skin",
            "34206005",
            "route",
        ),
        ("drug_codes.csv", "rxnorm,2193,J0696", "rxnorm,2193,J0000", ",2193,", "J0000"),
        ("drug_codes.csv", "ndc,00409379601,", "ndc,0409379601,", "0409379601", "11 digits"),
        (
            "drug_codes.csv",
            ",J1885,30,mg,1,mL,ketorolac tromethamine 30 MG/ML Injectable Solution",
            ",J1885,thirty,mg,1,mL,ketorolac tromethamine 30 MG/ML Injectable Solution",
            "860096",
            "not a number",
        ),
        (
            "routes.csv",
            "SNOMED CT; FHIR R4 ValueSet route-codes https://hl7.org/fhir/R4/valueset-route-codes.html",
            "",
            "34206005",
            "source",
        ),
        ("modifiers.csv", "XU,Unusual", "QQ,Unusual", "QQ,Unusual", "distinct-procedure modifier"),
        (
            "payers.csv",
            "medicare,no,no,4,CMS CR",
            "medicare,no,no,0,CMS CR",
            "CMS CR 3631",
            "mue_96372",
        ),
        (
            "settings.csv",
            "HH,home health,home,12",
            "HH,home health,home,1",
            "HH",
            "place_of_service",
        ),
        ("settings.csv", "HH,home health,home", "HH,home health,clinic", "HH", "setting"),
        (
            "fee_schedule.csv",
            "96372,office,15.36",
            "96372,office,fifteen",
            "96372,office",
            "not a number",
        ),
        ("sites.csv", "Left deltoid,left", "Left deltoid,sinister", "Left deltoid", "laterality"),
        (
            "procedures.csv",
            '96372,"Therapeutic, prophylactic, or diagnostic injection; subcutaneous or intramuscular",claim',
            '96372,"Therapeutic, prophylactic, or diagnostic injection; subcutaneous or intramuscular",maybe',
            "subcutaneous,96372",
            "outcome",
        ),
        (
            "vaccines.csv",
            ",influenza,yes,influenza vaccine",
            ",flu,yes,influenza vaccine",
            "140,",
            "vaccine_group",
        ),
        ("evaluation_management.csv", "99202,99499", "99499,99202", "Evaluation", "range"),
        ("payer_codes.csv", "sopt,1,prefix", "sopt,1,starts", "Medicare (all 1x)", "match"),
    ],
)
def test_broken_row_names_file_and_row(mappings, name, old, new, needle, message):
    edit(mappings, name, old, new)
    expected_row = row_of(mappings, name, needle)
    with pytest.raises(MappingError) as info:
        load_rules(mappings)
    assert info.value.file == name
    assert info.value.row == expected_row
    assert message in str(info.value)
    assert str(info.value).startswith(f"{name}, row {expected_row}: ")
    assert info.value.exit_code == EXIT_MAPPINGS


def test_duplicate_key_names_both_rows(mappings):
    path = mappings / "drugs.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    dup = next(line for line in lines if line.startswith("J2405,"))
    path.write_text("\n".join([*lines, dup]) + "\n", encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_rules(mappings)
    assert info.value.file == "drugs.csv"
    assert info.value.row == len(lines) + 1
    assert "duplicate" in str(
        info.value
    ) and f"row {row_of(mappings, 'drugs.csv', 'J2405,')}" in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "routes.csv",
        "drug_codes.csv",
        "sites.csv",
        "settings.csv",
        "fee_schedule.csv",
        "vaccines.csv",
    ],
)
def test_duplicate_keys_in_keyed_tables(mappings, name):
    path = mappings / name
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="utf-8")
    with pytest.raises(MappingError, match="duplicate") as info:
        load_rules(mappings)
    assert (info.value.file, info.value.row) == (name, len(lines) + 1)


def test_missing_column_is_row_1(mappings):
    edit(
        mappings,
        "routes.csv",
        "system,code,display,route,source",
        "system,code,display,rout,source",
    )
    with pytest.raises(MappingError) as info:
        load_rules(mappings)
    assert (info.value.file, info.value.row) == ("routes.csv", 1)
    assert "route" in str(info.value)


def test_unquoted_comma_gives_too_many_values(mappings):
    edit(
        mappings,
        "routes.csv",
        "Subcutaneous route,subcutaneous",
        "Subcutaneous, route,subcutaneous",
    )
    with pytest.raises(MappingError, match="more values") as info:
        load_rules(mappings)
    assert info.value.row == row_of(mappings, "routes.csv", "34206005")


@pytest.mark.parametrize("name", ["drugs.csv", "routes.csv", "gaps.codesystem.json", "payers.csv"])
def test_missing_file(mappings, name):
    (mappings / name).unlink()
    with pytest.raises(MappingError, match="missing") as info:
        load_rules(mappings)
    assert info.value.file == name


def test_missing_directory(tmp_path):
    with pytest.raises(MappingError, match="not found"):
        load_rules(tmp_path / "nope")


def test_j3490_must_be_listed(mappings):
    path = mappings / "drugs.csv"
    path.write_text(
        "\n".join(line for line in path.read_text().splitlines() if not line.startswith("J3490"))
        + "\n"
    )
    with pytest.raises(MappingError, match="J3490"):
        load_rules(mappings)


def test_every_route_needs_a_procedure_row(mappings):
    path = mappings / "procedures.csv"
    path.write_text(
        "\n".join(
            line for line in path.read_text().splitlines() if not line.startswith("intravitreal")
        )
        + "\n"
    )
    with pytest.raises(MappingError, match="intravitreal") as info:
        load_rules(mappings)
    assert info.value.file == "procedures.csv"


def test_every_payer_type_needs_a_row(mappings):
    path = mappings / "payers.csv"
    path.write_text(
        "\n".join(line for line in path.read_text().splitlines() if not line.startswith("medicaid"))
        + "\n"
    )
    with pytest.raises(MappingError, match="medicaid"):
        load_rules(mappings)


def _codesystem(mappings: Path) -> dict:
    return json.loads((mappings / "gaps.codesystem.json").read_text())


def _write_codesystem(mappings: Path, cs) -> None:
    (mappings / "gaps.codesystem.json").write_text(json.dumps(cs))


@pytest.mark.parametrize(
    "breakage,message",
    [
        (lambda cs: cs.update(resourceType="ValueSet"), "CodeSystem"),
        (lambda cs: cs.pop("url"), "url"),
        (
            lambda cs: cs["concept"][0]["property"].__setitem__(
                0, {"code": "severity", "valueCode": "fatal"}
            ),
            "severity",
        ),
        (lambda cs: cs["concept"][1].update(code=cs["concept"][0]["code"]), "repeated"),
        (lambda cs: cs["concept"][2].pop("definition"), "definition"),
        (lambda cs: cs["concept"].pop(), "lacks gap code"),
    ],
)
def test_bad_gap_codesystem(mappings, breakage, message):
    cs = _codesystem(mappings)
    breakage(cs)
    _write_codesystem(mappings, cs)
    with pytest.raises(MappingError, match=message) as info:
        load_rules(mappings)
    assert info.value.file == "gaps.codesystem.json"


def test_gap_codesystem_that_is_not_json_names_the_line(mappings):
    (mappings / "gaps.codesystem.json").write_text('{\n"resourceType": "CodeSystem",\n oops\n}')
    with pytest.raises(MappingError, match="not valid JSON") as info:
        load_rules(mappings)
    assert (info.value.file, info.value.row) == ("gaps.codesystem.json", 3)


def test_gap_codesystem_is_a_valid_fhir_codesystem():
    from fhir.resources.R4B.codesystem import CodeSystem

    cs = CodeSystem.model_validate(json.loads((MAPPINGS / "gaps.codesystem.json").read_text()))
    assert cs.url == load_rules().gap_codesystem_url


def test_gap_severities_in_the_codesystem():
    gaps = load_rules().gaps
    assert gaps["missing-consent"].severity == "info"
    assert gaps["missing-site"].severity == "warning"
    assert gaps["missing-dose"].severity == "error"
    assert gaps["vaccine"].severity == "info"
    assert gaps["duplicate"].severity == "error"


# ----------------------------------------------------------------------------- Config / load_config


def test_config_defaults():
    assert load_config(None) == Config()
    c = Config()
    assert (
        c.jw_jz is True
        and c.identifier_system == "urn:fhir-injection:claim"
        and c.billing_provider is None
    )


def test_load_config_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        'identifier_system = "urn:example:claims"\nbilling_provider = "Organization/x"\n'
        'jw_jz = false\n[severity]\nmissing-consent = "info"\nmissing-site = "error"\n'
        '[distinct_modifier]\nmedicare = "XS"\n'
    )
    c = load_config(path)
    assert c.severity == {"missing-consent": "info", "missing-site": "error"}
    assert c.distinct_modifier == {"medicare": "XS"}
    assert (c.jw_jz, c.identifier_system, c.billing_provider) == (
        False,
        "urn:example:claims",
        "Organization/x",
    )


@pytest.mark.parametrize(
    "text,message",
    [
        ("colour = 'blue'\n", "unknown setting"),
        ("[severity]\nmissing-nothing = 'info'\n", "unknown gap"),
        ("[severity]\nmissing-consent = 'fatal'\n", "severity"),
        ("[distinct_modifier]\nmedicare = '25'\n", "distinct modifier"),
        ("identifier_system = 'no-colon'\n", "identifier_system"),
        ("identifier_system = 'urn:a|b'\n", "identifier_system"),
        ("this is not toml", "config file"),
    ],
)
def test_bad_config_is_a_config_error(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert info.value.exit_code == 2


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")
