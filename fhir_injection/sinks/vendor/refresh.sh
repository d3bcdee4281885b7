#!/usr/bin/env bash
# Refresh the chart library report.html embeds (Vega, Vega-Lite, vega-embed: BSD-3-Clause, the
# University of Washington Interactive Data Lab) from the npm registry, with npm's own client.
# Usage: bash fhir_injection/sinks/vendor/refresh.sh [VEGA VEGA_LITE VEGA_EMBED]
# Then run tests/integration/test_browser_report.py: the charts must still draw in headless Chromium.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
vega="${1:-6.4.0}" lite="${2:-6.5.0}" embed="${3:-7.3.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "vega@$vega" "vega-lite@$lite" "vega-embed@$embed" >/dev/null
for pkg in "vega-$vega" "vega-lite-$lite" "vega-embed-$embed"; do
  mkdir "$pkg" && tar xzf "$pkg.tgz" -C "$pkg"
done
cp "vega-$vega/package/build/vega.min.js" "$here/vega.min.js"
cp "vega-lite-$lite/package/build/vega-lite.min.js" "$here/vega-lite.min.js"
cp "vega-embed-$embed/package/build/vega-embed.min.js" "$here/vega-embed.min.js"
cp "vega-$vega/package/LICENSE" "$here/LICENSE-vega"
cp "vega-lite-$lite/package/LICENSE" "$here/LICENSE-vega-lite"
cp "vega-embed-$embed/package/LICENSE" "$here/LICENSE-vega-embed"
printf '{"vega": "%s", "vega-lite": "%s", "vega-embed": "%s"}\n' "$vega" "$lite" "$embed" \
  > "$here/versions.json"
echo "vendored vega $vega, vega-lite $lite, vega-embed $embed"
