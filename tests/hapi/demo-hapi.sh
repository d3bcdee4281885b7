#!/usr/bin/env bash
# The demo against a real FHIR server: start the local HAPI FHIR JPA server (if it is not running),
# load fixtures/demo into it, sync, and print the summary and where the report is.
#
#   bash tests/hapi/demo-hapi.sh                 # local HAPI on 127.0.0.1:${HAPI_PORT:-8080}
#   FHIR_BASE_URL=http://host/fhir bash tests/hapi/demo-hapi.sh    # any FHIR R4 server you may write to
#
# State and report go to ${DEMO_OUT:-out/demo-hapi}/ (a fresh state file every run, so the sync pulls
# everything the load just wrote; the server keeps its Claims, so a second run posts nothing new).
# The server is left running: tests/hapi/run-hapi.sh stop
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-python3}"
OUT="${DEMO_OUT:-$ROOT/out/demo-hapi}"

if [[ -n "${FHIR_BASE_URL:-}" ]]; then
  URL="${FHIR_BASE_URL%/}"
else
  URL="$(bash "$ROOT/tests/hapi/run-hapi.sh" start | tail -n 1)"
fi
echo "FHIR server: $URL"

mkdir -p "$OUT"
rm -f "$OUT/state.json"

cd "$ROOT"
echo "== load fixtures/demo (13 administrations are deliberately invalid or dangle: the server refuses them)"
set +e
"$PY" -m fhir_injection load --source fixtures/demo --target "$URL" 2> "$OUT/load.log"
load_rc=$?
set -e
grep -c "not loaded:" "$OUT/load.log" | xargs -I{} echo "{} record(s) refused; see $OUT/load.log"
if [[ $load_rc -ne 0 && $load_rc -ne 1 ]]; then
  cat "$OUT/load.log" >&2
  exit "$load_rc"
fi

echo "== sync"
set +e
"$PY" -m fhir_injection sync --source "$URL" --full --state "$OUT/state.json" --report "$OUT/report.json"
rc=$?
set -e
echo "Report: $OUT/report.json (state: $OUT/state.json)"
exit "$rc"
