#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what is missing, then builds,
# type-checks, lints and runs every test (unit, fuzz, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."

# better-sqlite3 builds from source against the local Node headers (no prebuilt binary here).
export npm_config_nodedir="${npm_config_nodedir:-/usr}"

# Debian packages of the servers the tests start on loopback (in temporary folders, on free
# ports): PostgreSQL for the authority's scaled store, BIND 9 for DNS publication and
# discovery, OpenLDAP for directory-based activation; openssl makes the TLS test certificates;
# Chromium runs the console's web UI tests (driven by playwright-core, never its own browser);
# SoftHSM2 is the PKCS#11 token that holds a root key in the authority's token tests; curl is
# the README's HTTPS client (its portal job).
SERVER_PACKAGES=(postgresql bind9 bind9-dnsutils slapd ldap-utils openssl chromium softhsm2 curl)
missing=()
for pkg in "${SERVER_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

echo "== build and type-check"
npx tsc -b
# The web UIs' type-check, the linter and the formatter check read the built tree only: side
# by side on the two cores, each one's output shown when it fails.
echo "== web type-check, lint, format"
checks="$(mktemp -d)"
(npx tsc -p packages/console/web && npx tsc -p packages/authority/web) >"$checks/web" 2>&1 &
web=$!
npx eslint . >"$checks/lint" 2>&1 &
lint=$!
npx prettier --check . >"$checks/format" 2>&1 &
format=$!
failed=0
wait "$web" || { echo "web type-check failed:"; cat "$checks/web"; failed=1; }
wait "$lint" || { echo "lint failed:"; cat "$checks/lint"; failed=1; }
wait "$format" || { grep -v '^Checking' "$checks/format" || true; echo "formatting differs: run npm run format"; failed=1; }
rm -rf "$checks"
[ "$failed" -eq 0 ] || exit 1
echo "== tests"
results="$(mktemp)"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" || status=$?
# One plain closing line, whatever the runner prints above it.
node -e 'const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`)' "$results" || true
rm -f "$results"
exit "$status"
