#!/usr/bin/env bash
# Runs Synthea (org.mitre.synthea:synthea, version pinned in pom.xml, from Maven Central) with a
# pinned seed, clinician seed and reference date, and writes two FHIR R4 exports:
#
#   OUT/bulk/fhir/*.ndjson      bulk NDJSON (one file per type, plus parameters.json),
#                               POPULATION living patients (the dead ones Synthea also keeps come on top)
#   OUT/bundles/fhir/*.json     per-patient transaction Bundles (urn:uuid: references), named by the
#                               patient's id, plus the hospital and practitioner batch Bundles;
#                               BUNDLE_POPULATION living patients
#
# Usage: tests/realworld/synthea/run.sh [OUT] [POPULATION] [BUNDLE_POPULATION]
#        defaults: OUT=/tmp/synthea-run, POPULATION=120, BUNDLE_POPULATION=5
# 120 living patients give about 3,000 MedicationAdministrations (60 gave 1,606, 1,303 of them one
# drug of three dialysis patients); both runs take about 2.5 minutes on 2 cores, plus the first
# download of Synthea and its dependencies (~200 MB) into ~/.m2. The same seed gives the same
# patients first: a smaller population is a prefix of a larger one. Two runs with the same options
# write byte-identical files.
#
# Environment: SYNTHEA_SEED (96372), SYNTHEA_CLINICIAN_SEED (96372), SYNTHEA_REFERENCE_DATE (20261001),
#   SYNTHEA_END_DATE (the reference date), SYNTHEA_STATE (Massachusetts), SYNTHEA_THREADS (1: one
#   patient at a time, so each NDJSON file lists the patients in one order), JAVA_OPTS (-Xmx2g).
#
# Every option below is Synthea's own: the short ones are App's command line (-s seed, -cs clinician
# seed, -r reference date and -e end date as yyyyMMdd, -p living population), the --key=value ones are
# settings from its src/main/resources/synthea.properties. US Core stays as Synthea's default
# (use_us_core_ig = true, 5.0.1); exporter.years_of_history stays 10.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(mkdir -p "${1:-/tmp/synthea-run}" && cd "${1:-/tmp/synthea-run}" && pwd)"
population="${2:-120}"
bundle_population="${3:-5}"
seed="${SYNTHEA_SEED:-96372}"
clinician_seed="${SYNTHEA_CLINICIAN_SEED:-96372}"
reference_date="${SYNTHEA_REFERENCE_DATE:-20261001}"
# -r alone moves only the reference time: Synthea 3.3 still simulates up to the wall clock of the run
# (its end time defaults to "now"), so without -e the data changes from day to day.
end_date="${SYNTHEA_END_DATE:-$reference_date}"
state="${SYNTHEA_STATE:-Massachusetts}"
threads="${SYNTHEA_THREADS:-1}"

classpath_file="$out/classpath.txt"
(cd "$here" && mvn -q -B dependency:build-classpath -Dmdep.outputFile="$classpath_file")
version="$(sed -n 's:.*<synthea.version>\(.*\)</synthea.version>.*:\1:p' "$here/pom.xml")"
echo "synthea $version, seed $seed, clinician seed $clinician_seed, reference date $reference_date, end date $end_date, $state"

common=(
  -s "$seed" -cs "$clinician_seed" -r "$reference_date" -e "$end_date"
  --generate.thread_pool_size="$threads"
  --exporter.fhir.export=true
  --exporter.hospital.fhir.export=true
  --exporter.practitioner.fhir.export=true
  --exporter.metadata.export=false
  --exporter.ccda.export=false
  --exporter.csv.export=false
)

run() {  # run DIR POPULATION extra-options...
  local dir="$1" pop="$2"; shift 2
  rm -rf "$dir"; mkdir -p "$dir"
  local start end
  echo "java ${JAVA_OPTS:--Xmx2g} -cp <classpath> App ${common[*]} -p $pop --exporter.baseDirectory=$dir/ $* $state" \
    > "$dir/command.txt"
  start=$(date +%s)
  # Synthea reads its run-time files (modules, geography, ...) from the jar; it runs in $dir so that
  # nothing it writes beside its output lands in the work tree.
  (cd "$dir" && java ${JAVA_OPTS:--Xmx2g} -cp "$(cat "$classpath_file")" App \
      "${common[@]}" -p "$pop" --exporter.baseDirectory="$dir/" "$@" "$state") > "$dir/synthea.log" 2>&1 \
    || { tail -40 "$dir/synthea.log" >&2; exit 1; }
  end=$(date +%s)
  echo "$((end - start))" > "$dir/seconds.txt"
  echo "$dir: $pop living patients in $((end - start)) s ($(grep -c -- ' -- ' "$dir/synthea.log" || true) patients logged)"
}

run "$out/bulk" "$population" --exporter.fhir.bulk_data=true
run "$out/bundles" "$bundle_population" --exporter.fhir.bulk_data=false --exporter.fhir.transaction_bundle=true \
  --exporter.use_uuid_filenames=true

{
  echo "synthea_version=$version"
  echo "seed=$seed clinician_seed=$clinician_seed reference_date=$reference_date end_date=$end_date state=$state threads=$threads"
  echo "population=$population bundle_population=$bundle_population"
  echo "options=${common[*]}"
  echo "java=$(java -version 2>&1 | head -1)"
  echo "date_run=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$out/run-info.txt"
du -sh "$out/bulk/fhir" "$out/bundles/fhir"
