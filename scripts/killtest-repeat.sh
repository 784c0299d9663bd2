#!/usr/bin/env bash
# Flakiness hunt for killtest's detectors: runs the known-good system and each known-bad system
# N times (default 20) and prints a tally of how often each got exactly the verdict it must get:
# known-good passes every check; each known-bad fails exactly its own check and passes the rest.
#
#   scripts/killtest-repeat.sh [N]
#
# Exit status: 0 when every run was as expected, 1 otherwise.
set -euo pipefail
n=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
go build -o "$work" ./cmd/killtest ./internal/killtest/testdata/portholder ./internal/killtest/testdata/goodworker

# scenario file -> the checks that must fail (empty: must pass)
declare -A expect=(
	[good.yaml]=""
	[bad-orphan.yaml]="orphans"
	[bad-setsid.yaml]="orphans"
	[bad-fd.yaml]="fd-growth"
	[bad-memory.yaml]="memory-growth"
	[bad-port.yaml]="ports"
	[bad-zombie.yaml]="zombies"
	[bad-lossy-queue.yaml]="history"
)

printf '%-22s %-15s %6s %6s  %s\n' scenario "must fail" ok wrong "wrong outcomes"
all_ok=1
for f in good.yaml bad-orphan.yaml bad-setsid.yaml bad-fd.yaml bad-memory.yaml bad-port.yaml bad-zombie.yaml bad-lossy-queue.yaml; do
	want=${expect[$f]}
	# Each run prints "VERDICT name #i (took)" then one indented line per check that did not pass.
	TMPDIR=$work "$work/killtest" run --runs "$n" --bin "$work" --out "$work" \
		"internal/killtest/testdata/$f" >"$work/out.txt" 2>"$work/err.txt" || true
	tally=$(awk -v want="$want" '
		function judge() {
			if (!started) return
			if (got == want) ok++; else { bad++; wrong[got == "" ? "(pass)" : got]++ }
		}
		/^(PASS|FAIL|UNKNOWN) / { judge(); started = 1; got = ""; next }
		/^        (FAIL|UNKNOWN) / {
			name = $2; sub(/:$/, "", name)
			if ($1 == "UNKNOWN") name = "unknown:" name
			got = (got == "" ? name : got "," name)
			next
		}
		/^        harness: / { got = (got == "" ? "harness" : got ",harness") }
		END {
			judge()
			s = ""
			for (w in wrong) s = s w "×" wrong[w] " "
			printf "%d %d %s", ok, bad, s
		}' "$work/out.txt")
	read -r ok bad rest <<<"$tally"
	printf '%-22s %-15s %6d %6d  %s\n' "$f" "${want:-(none)}" "$ok" "$bad" "${rest:-}"
	if [ "$bad" -ne 0 ] || [ "$ok" -ne "$n" ]; then
		all_ok=0
	fi
done
[ "$all_ok" = 1 ]
