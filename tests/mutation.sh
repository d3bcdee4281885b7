#!/usr/bin/env bash
# Mutation testing of the decision core: do the unit tests pin the behaviour?
#
# mutmut (3.x, from the `test` extra) changes the code one small edit at a time (a `<` for a `<=`, a
# constant, a dropped argument) and runs the tests that reach the changed function. A mutant the tests
# fail on is "killed"; one they pass on "survived": a change in behaviour nothing would notice.
#
#   bash tests/mutation.sh quick    the CI gate: the QUICK modules: units, claims, model, context (about 4 minutes
#                                   on 2 cores); exits 1 when a module scores below the threshold
#   bash tests/mutation.sh full     the whole decision core, FULL modules (4,411 mutants: over 20 minutes on 2 cores);
#                                   prints every module's score, exits 1 when one is below the threshold
#   bash tests/mutation.sh only MODULE...
#                                   a fresh run over the named modules only (paths as in the list below),
#                                   e.g. while pinning one module; prints their scores
#   bash tests/mutation.sh scores [MODULE...]
#                                   print the scores of the last run again, without running anything
#
# One line per module:  <module> <killed>/<total> <pct>%   where total = killed + survived.
#   killed    the tests failed on the mutant (or crashed on it);
#   survived  the tests passed on it, including "no tests": a mutant no selected test reaches;
#   timeouts, suspicious results and segfaults count in neither (a mutant that loops forever is caught in
#   practice, but on a loaded machine a slow clean run times out too); they are shown in brackets when
#   there are any. A mutant left unchecked (an interrupted run) fails the run.
#
# Look at what survived with `mutmut results` and `mutmut show <name>` (from the repository root, after a
# run); the mutants/ directory is the run's scratch copy (git-ignored) and is rebuilt on every run.
#
# Which tests run: [tool.mutmut] pytest_add_cli_args_test_selection in pyproject.toml, by folder
# (tests/decision, tests/rules, tests/coding, tests/sinks: a new test file there is selected without
# an edit), always with -m "not hapi". Environment: MUTATION_MAX_CHILDREN (default 2) workers,
# MUTATION_THRESHOLD (default 90) percent.
set -euo pipefail

# ---- The modules, named in this one place: edit the paths when the package layout changes. -------------
# A path and the runs it is in: "quick" modules are in both runs, "full" ones only in the full run.
MODULES=(
    "fhir_injection/decision/units.py       quick"
    "fhir_injection/sinks/claims.py         quick"
    "fhir_injection/decision/model.py       quick"
    "fhir_injection/decision/context.py     quick"
    "fhir_injection/decision/engine.py      full"
    "fhir_injection/decision/case.py        full"
    "fhir_injection/decision/record.py      full"
    "fhir_injection/decision/early.py       full"
    "fhir_injection/decision/billing.py     full"
    "fhir_injection/decision/drug_line.py   full"
    "fhir_injection/decision/clinical.py    full"
    "fhir_injection/decision/diagnosis_codes.py full"
    "fhir_injection/decision/medication.py  full"
    "fhir_injection/decision/product_form.py full"
    "fhir_injection/decision/billed_drug.py full"
    "fhir_injection/decision/elements.py    full"
    "fhir_injection/decision/localtime.py   full"
    "fhir_injection/decision/zones.py       full"
    "fhir_injection/decision/infusion.py    full"
    "fhir_injection/decision/clinicians.py  full"
)
# ---------------------------------------------------------------------------------------------------------

FULL_MODULES=() QUICK_MODULES=()
for entry in "${MODULES[@]}"; do
    read -r path runs <<<"$entry"
    FULL_MODULES+=("$path")
    if [[ "$runs" == quick ]]; then QUICK_MODULES+=("$path"); fi
done

THRESHOLD="${MUTATION_THRESHOLD:-90}"
MAX_CHILDREN="${MUTATION_MAX_CHILDREN:-2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() { sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

# The per-module scores, from the exit code mutmut recorded for each mutant in mutants/<module>.meta
# (read through mutmut's own table of exit codes). Exit status 1 when a module is below the threshold or
# has mutants that were never checked.
scores() {
    python3 - "$THRESHOLD" "$@" <<'PY'
import json, sys
from pathlib import Path
from mutmut.stats import status_by_exit_code

threshold, modules = float(sys.argv[1]), sys.argv[2:]
failed = False
for module in modules:
    meta = Path("mutants") / (module + ".meta")
    if not meta.exists():
        print(f"{module} no mutation results (mutants/{module}.meta): was it run, does the path exist?")
        failed = True
        continue
    counts: dict[str, int] = {}
    for code in json.loads(meta.read_text())["exit_code_by_key"].values():
        status = status_by_exit_code[code]
        counts[status] = counts.get(status, 0) + 1
    killed = counts.pop("killed", 0) + counts.pop("caught by type check", 0)
    survived = counts.pop("survived", 0) + counts.pop("no tests", 0)
    unchecked = counts.pop("not checked", 0)
    total = killed + survived
    pct = 100.0 * killed / total if total else 100.0
    extra = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    if unchecked:
        extra = ", ".join(filter(None, [extra, f"{unchecked} NOT CHECKED"]))
    print(f"{module} {killed}/{total} {pct:.1f}%" + (f"  [{extra}]" if extra else ""))
    if pct < threshold or unchecked:
        failed = True
        print(f"mutation.sh: {module} is below {threshold:g}% or incomplete", file=sys.stderr)
sys.exit(1 if failed else 0)
PY
}

# One fresh mutmut run over the given modules. mutmut has no command-line option for the files to
# mutate, so the list above is handed to its configuration here (only_mutate), the rest of which comes
# from [tool.mutmut] in pyproject.toml.
run() {
    for module in "$@"; do
        [[ -f "$module" ]] || { echo "mutation.sh: no module $module (moved? edit the list at the top of $0)" >&2; exit 2; }
    done
    python3 -c "import mutmut" 2>/dev/null \
        || { echo "mutation.sh: mutmut is not installed (pip install 'mutmut>=3.8,<4', or the test extra)" >&2; exit 2; }
    rm -rf mutants
    mkdir -p mutants
    local log started
    log="$(mktemp "${TMPDIR:-/tmp}/mutmut-run.XXXXXX")"
    started=$(date +%s)
    echo "mutation.sh: mutmut on ${*} (${MAX_CHILDREN} workers; log: ${log})"
    if ! python3 - "$MAX_CHILDREN" "$@" >"$log" 2>&1 <<'PY'
import sys
from mutmut.configuration import config

max_children, modules = sys.argv[1], sys.argv[2:]
config().only_mutate = list(modules)
from mutmut.__main__ import cli  # noqa: E402  (after the configuration is set)

cli(["run", "--max-children", max_children], standalone_mode=False)
PY
    then
        tail -n 40 "$log" | tr '\r' '\n' | tail -n 40 >&2
        echo "mutation.sh: mutmut failed (log: $log)" >&2
        exit 1
    fi
    echo "mutation.sh: mutmut done in $(( $(date +%s) - started ))s"
}

case "${1:-}" in
    quick) run "${QUICK_MODULES[@]}"; scores "${QUICK_MODULES[@]}" ;;
    full) run "${FULL_MODULES[@]}"; scores "${FULL_MODULES[@]}" ;;
    only) shift; [[ $# -gt 0 ]] || usage; run "$@"; scores "$@" ;;
    scores) shift; if [[ $# -gt 0 ]]; then scores "$@"; else scores "${FULL_MODULES[@]}"; fi ;;
    *) usage ;;
esac
