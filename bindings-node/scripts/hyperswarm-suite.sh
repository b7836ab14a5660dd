#!/usr/bin/env bash
# Hyperswarm 4.17's own test suite against this package (issue 14), run by `make test`.
# Passes when every test passes except those listed in KNOWN_FAILURES, each of which the README's
# "Hyperswarm's own test suite" section explains (they read Hyperswarm internals, or need an
# engine change). A known failure that starts passing is reported, not failed.
# Needs the addon built (bindings-node/scripts/test.sh does it) and ../shared/hyperswarm-suite.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
suite="$repo/../shared/hyperswarm-suite/run.sh"
if [ ! -x "$suite" ] && [ ! -f "$suite" ]; then
  echo "hyperswarm-suite.sh: $suite not found; skipping"
  exit 0
fi
KNOWN_FAILURES=(
  "swarm: peerDiscovery has unslabbed closestNodes"
  "swarm: port opt gets passed on to hyperdht"
  "swarm: firewall for server connections results in peer ban"
)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
bash "$suite" "$repo" | tee "$out"
unexpected=0
while IFS= read -r line; do
  name=${line#FAIL }
  name=${name%%  \[*}
  known=0
  for k in "${KNOWN_FAILURES[@]}"; do [ "$name" = "$k" ] && known=1; done
  if [ $known = 0 ]; then echo "unexpected failure: $name"; unexpected=$((unexpected + 1)); fi
done < <(grep '^FAIL ' "$out" || true)
for k in "${KNOWN_FAILURES[@]}"; do
  grep -qF "PASS $k" "$out" && echo "note: known failure now passes: $k (update KNOWN_FAILURES and the README)"
done
grep -q '^hyperswarm suite: ' "$out" || { echo "the suite printed no summary"; exit 1; }
[ $unexpected = 0 ]
