#!/usr/bin/env bash
# The installed package works away from the repository.
#
# Builds the wheel, installs it with its dependencies into a fresh virtual environment in a
# temporary folder, and from an empty directory runs `fhir-injection rules` and the demo sync
# (the rule tables and the demo clinic must come from inside the wheel). Checks that the
# package was imported from that environment, that the outputs exist, and that the rules
# summary, the Claim counts (by status) and the Task count equal those of a run from this
# checkout. Exit 0 when all hold; prints what differs otherwise.
#
# Usage: bash tests/packaging/check-wheel.sh     (PYTHON=python3.12 to build/run with another)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fhir-injection-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
unset PYTHONPATH
start=$SECONDS

# 1. the wheel (python -m build when installed, as a release would; pip otherwise)
if "$PY" -c "import build" 2>/dev/null; then
  "$PY" -m build --wheel --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
else
  "$PY" -m pip wheel -q --disable-pip-version-check --no-deps -w "$WORK/dist" "$ROOT"
fi
WHEEL="$(ls "$WORK"/dist/fhir_injection-*.whl)"

# 2. a fresh environment: the wheel and the dependencies it declares, nothing else
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "$WHEEL"

# 3. from an empty directory
mkdir "$WORK/empty" "$WORK/ref"
cd "$WORK/empty"
where="$("$WORK/venv/bin/python" -c 'import fhir_injection; print(fhir_injection.__file__)')"
case "$where" in
  "$WORK/venv/"*) ;;
  *) echo "check-wheel: fhir_injection was imported from $where, not from the wheel" >&2; exit 1 ;;
esac
"$WORK/venv/bin/fhir-injection" rules >"$WORK/rules.txt"
"$WORK/venv/bin/fhir-injection" sync >"$WORK/sync.txt"
case "$(head -n 1 "$WORK/rules.txt")" in
  "mappings OK: $WORK/venv/"*) ;;
  *) echo "check-wheel: the rule tables did not come from the wheel: $(head -n 1 "$WORK/rules.txt")" >&2; exit 1 ;;
esac
for f in Claim.ndjson Task.ndjson report.json; do
  [ -s "out/$f" ] || { echo "check-wheel: out/$f is missing or empty" >&2; exit 1; }
done

# 4. the same from the checkout
(cd "$ROOT" && "$PY" -m fhir_injection rules >"$WORK/ref-rules.txt" \
             && "$PY" -m fhir_injection sync --target "$WORK/ref/out" >"$WORK/ref-sync.txt")

counts() {  # "<active> active, <draft> draft Claims; <n> Tasks" for an output folder
  "$PY" - "$1" <<'PYEOF'
import collections, json, pathlib, sys
out = pathlib.Path(sys.argv[1])
claims = collections.Counter(json.loads(line)["status"] for line in (out / "Claim.ndjson").open() if line.strip())
tasks = sum(1 for line in (out / "Task.ndjson").open() if line.strip())
print(f"{claims['active']} active, {claims['draft']} draft Claims; {tasks} Tasks; {sum(claims.values())} Claims in all")
PYEOF
}
got="$(counts "$WORK/empty/out")"
want="$(counts "$WORK/ref/out")"
status=0
if [ "$got" != "$want" ]; then
  echo "check-wheel: the wheel's demo wrote $got; the checkout's wrote $want" >&2; status=1
fi
if ! diff <(tail -n +2 "$WORK/rules.txt") <(tail -n +2 "$WORK/ref-rules.txt") >&2; then
  echo "check-wheel: 'fhir-injection rules' differs between the wheel and the checkout" >&2; status=1
fi
if ! diff <(grep -v '^Wrote ' "$WORK/sync.txt") <(grep -v '^Wrote ' "$WORK/ref-sync.txt") >&2; then
  echo "check-wheel: the demo summary differs between the wheel and the checkout" >&2; status=1
fi
[ "$status" = 0 ] && echo "check-wheel: OK ($(basename "$WHEEL"); $(head -n 1 "$WORK/rules.txt"); demo: $got) in $((SECONDS - start)) s"
exit "$status"
