"""``fhir-injection rules``: validate mappings/ and print what it holds."""

from __future__ import annotations

from ..decision.ruleset import SYSTEM_SNOMED
from ..errors import EXIT_OK
from ..rules import load_rules

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    sub.add_parser("rules", help="validate mappings/ and print what it holds")


def run(args) -> int:
    rules = load_rules(args.mappings)
    print(f"mappings OK: {rules.directory}")
    print(
        f"  drugs (HCPCS): {len(rules.drugs)}; drug codes (RxNorm/NDC): {len(rules.drug_codes)}; "
        f"vaccines (CVX): {len(rules.vaccines)}"
        + "".join(
            f"; Medicare Part B by diagnosis ({rule}): "
            + ", ".join(sorted(v.cvx for v in rules.vaccines.values() if v.part_b_rule == rule))
            for rule in sorted({v.part_b_rule for v in rules.vaccines.values() if v.part_b_rule})
        )
    )
    print(
        f"  routes: {len(rules.routes)} codes, {len(rules.route_text)} reviewed texts; "
        f"IV codes: {len(rules.infusions)}; sites: {len(rules.sites)}; settings: {len(rules.settings)}; "
        f"payer types: {', '.join(sorted(rules.payers))}"
    )
    print(
        f"  encounter types: {len(rules.encounter_types) + len(rules.encounter_type_texts)} "
        f"(+ {sum(len(r) for r in rules.encounter_type_ranges.values())} code ranges); "
        f"payer codes: {len(rules.payer_codes)} "
        f"(+ {sum(len(p) for p in rules.payer_code_prefixes.values())} prefixes); "
        f"payer names: {len(rules.payer_names) + len(rules.payer_name_prefixes)}; "
        f"payer identifiers: {len(rules.payer_identifiers)}"
    )
    print(
        f"  dose forms: {len(rules.dose_forms)} codes, {len(rules.dose_form_names)} RxNorm names "
        f"in {len(rules.dose_form_categories)} categories"
    )
    print(f"  fee schedule rows: {len(rules.fees)}; gap codes: {len(rules.gaps)}")
    print("  drug coverage (HCPCS codes by class: reachable from an RxNorm/NDC code / all):")
    for cls, (reached, total) in _drug_coverage(rules).items():
        print(f"    {cls:<24}{reached:>5} / {total}")
    print(
        f"  drug families (salt/size chosen by product and dose): {len(rules.drug_families)} codes"
    )
    print(
        f"  packages (container size, single/multi-dose): {len(rules.packages)}; "
        f"codes chosen by diagnosis: {len(rules.drug_by_diagnosis)} "
        f"({', '.join(sorted({p.rule for p in rules.drug_by_diagnosis.values()}))}); "
        f"NDC unit rules: {len(rules.ndc_units)}"
    )
    _print_crosswalk(rules)
    _print_billing_rules(rules)
    return EXIT_OK


def _print_crosswalk(rules) -> None:
    """The CMS ASP NDC-HCPCS crosswalk: each release in force, its NDCs and containers."""
    crosswalk = rules.ndc_hcpcs
    print(
        f"  CMS ASP NDC-HCPCS crosswalk: {len(rules.crosswalk_releases)} release(s), "
        f"{len(crosswalk)} NDCs, {len(rules.crosswalk_hcpcs)} distinct HCPCS; the release in force "
        "on the date of service decides (after the newest release's last day: the newest)"
    )
    for release in rules.crosswalk_releases:
        entries = [
            x for xs in rules.ndc_hcpcs_releases.values() for x in xs if x.release == release
        ]
        print(
            f"    {release[0]} to {release[1]}: {len(entries)} NDCs, "
            f"{sum(len(x.hcpcs) for x in entries)} rows, "
            f"{len({h for x in entries for h in x.hcpcs})} distinct HCPCS; "
            f"container size known: {sum(x.package is not None for x in entries)} NDCs, "
            "container kind known: "
            f"{sum(x.package is not None and x.package.container is not None for x in entries)}"
            " NDCs"
        )


def _print_billing_rules(rules) -> None:
    """Diagnoses billed as ICD-10-CM, the rendering provider, modifiers and filing limits."""
    concepts, pairs, targets, members = _snomed_coverage(rules)
    print(
        f"  SNOMED CT diagnoses billed as ICD-10-CM (snomed_icd10.csv): {concepts} concepts, "
        f"{pairs} pairs, {targets} ICD-10-CM codes; SNOMED CT members of diagnosis groups "
        "with a row: "
        + (", ".join(f"{rule} {hit} / {total}" for rule, (hit, total) in members.items()) or "none")
    )
    prefixes = sum(len(p) for p in rules.qualification_prefixes.values())
    print(
        f"  rendering provider: {len(rules.qualifications)} qualification codes "
        f"(+ {prefixes} prefixes), {len(rules.participant_ranks)} participant types"
    )
    by_rule = ", ".join(
        f"{m.code} {use}" + (f" from {m.effective}" if m.effective else "")
        for use, m in sorted(rules.modifiers.items())
    )
    distinct = ", ".join(f"{pt} {rules.payer(pt).distinct_modifier}" for pt in sorted(rules.payers))
    print(f"  modifiers by rule: {by_rule}; distinct procedure: {distinct}")
    limits = ", ".join(
        f"{pt} {limit.text if limit else 'none'}"
        for pt, limit in sorted(rules.filing_limits.items())
    )
    print(f"  filing limits (from the date of service): {limits}")


def _snomed_coverage(rules) -> tuple[int, int, int, dict[str, tuple[int, int]]]:
    """(SNOMED CT concepts with an ICD-10-CM row, pairs, distinct ICD-10-CM codes, diagnosis rule ->
    (its SNOMED CT members with a row, all its SNOMED CT members))."""
    table = rules.snomed_icd10
    members: dict[str, tuple[int, int]] = {}
    for rule, groups in sorted(rules.diagnosis_rules.items()):
        codes = {lo for group in groups for system, lo, _ in group if system == SYSTEM_SNOMED}
        if codes:
            members[rule] = (sum(c in table for c in codes), len(codes))
    return (
        len(table),
        sum(len(v) for v in table.values()),
        len({code for v in table.values() for code, _ in v}),
        members,
    )


def _drug_coverage(rules) -> dict[str, tuple[int, int]]:
    """drug class -> (codes reachable from a mapped RxNorm/NDC code, directly or through their
    salt/size family, all codes); "total" last."""
    mapped = {c.hcpcs for c in rules.drug_codes.values()}
    reached = mapped | {
        m.hcpcs for h in mapped if h in rules.drug_families for m in rules.drug_families[h].members
    }
    out: dict[str, tuple[int, int]] = {}
    for drug in rules.drugs.values():
        hit, total = out.get(drug.drug_class, (0, 0))
        out[drug.drug_class] = (hit + (drug.hcpcs in reached), total + 1)
    out = dict(sorted(out.items(), key=lambda kv: -kv[1][1]))
    out["total"] = (sum(h for h, _ in out.values()), len(rules.drugs))
    return out
