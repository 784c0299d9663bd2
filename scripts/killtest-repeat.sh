#!/usr/bin/env bash
# Flakiness hunt for killtest and for proxyline: runs the known-good system, each known-bad system
# and each built-in scenario (proxyline against the lab) N times (default 20) and prints a tally
# of how often each got exactly the verdict it must get: known-good and the built-ins pass every
# check; each known-bad fails exactly its own check and passes the rest. The pyqueue pair needs
# python3, script and Redis on 127.0.0.1:6379 (without them their runs count as wrong).
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
go build -o "$work" ./cmd/killtest ./cmd/proxyline ./internal/killtest/testdata/portholder ./internal/killtest/testdata/goodworker

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
	[bad-proxyline-layers-off.yaml]="orphans"
	[bad-pyqueue-script.yaml]="orphans"
	[good-pyqueue-fixed.yaml]=""
	[test1-checker-sigterm]=""
	[test2-checker-sigkill]=""
	[test3-queue-integration]=""
	[test4-normal-cleanup]=""
	[test5-worker-sigkill-mid-task]=""
	[restart-loop]=""
)

printf '%-30s %-15s %6s %6s  %s\n' scenario "must fail" ok wrong "wrong outcomes"
all_ok=1
for f in good.yaml bad-orphan.yaml bad-setsid.yaml bad-fd.yaml bad-memory.yaml bad-port.yaml bad-zombie.yaml \
	bad-lossy-queue.yaml bad-proxyline-layers-off.yaml bad-pyqueue-script.yaml good-pyqueue-fixed.yaml \
	test1-checker-sigterm test2-checker-sigkill test3-queue-integration test4-normal-cleanup test5-worker-sigkill-mid-task restart-loop; do
	want=${expect[$f]}
	target=$f # a built-in scenario, by name
	case $f in *.yaml) target=internal/killtest/testdata/$f ;; esac
	# Each run prints "VERDICT name #i (took)" then one indented line per check that did not pass.
	TMPDIR=$work "$work/killtest" run --runs "$n" --bin "$work" --out "$work" \
		"$target" >"$work/out.txt" 2>"$work/err.txt" || true
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
	printf '%-30s %-15s %6d %6d  %s\n' "$f" "${want:-(none)}" "$ok" "$bad" "${rest:-}"
	if [ "$bad" -ne 0 ] || [ "$ok" -ne "$n" ]; then
		all_ok=0
	fi
done
[ "$all_ok" = 1 ]
