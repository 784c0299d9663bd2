#!/usr/bin/env bash
# Flakiness hunt for killtest and for proxyline: runs the known-good system, each known-bad system
# and each built-in scenario (proxyline against the lab) N times (default 20) and prints a tally
# of how often each got exactly the verdict it must get: known-good and the built-ins pass every
# check; each known-bad fails exactly its own check and passes the rest. The pyqueue pair needs
# python3, script and Redis on 127.0.0.1:6379; the Celery scenarios need /usr/bin/python3 with
# python3-celery and python3-redis, redis-server, script and mubeng (in PATH or shared/peers/ next
# to the repository or above it). Without them their runs count as wrong.
#
#   scripts/killtest-repeat.sh [N [SCENARIO...]]
#
# With SCENARIO arguments (file names of internal/killtest/testdata or built-in names, as in the
# table below) only those run, e.g. scripts/killtest-repeat.sh 20 good-celery-fixed.yaml
#
# Exit status: 0 when every run was as expected, 1 otherwise.
set -euo pipefail
n=${1:-20}
shift || true
only="$*"
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
go build -o "$work" ./cmd/killtest ./cmd/proxyline ./internal/killtest/testdata/portholder ./internal/killtest/testdata/goodworker \
	./internal/killtest/testdata/blocker
# mubeng, for the Celery scenarios: PATH first, then shared/peers/ in a parent directory.
mubeng=$(command -v mubeng || true)
for d in "$root" "$(dirname "$root")" "$(dirname "$(dirname "$root")")"; do
	[ -n "$mubeng" ] && break
	[ -x "$d/shared/peers/mubeng" ] && mubeng=$d/shared/peers/mubeng
done
[ -n "$mubeng" ] && ln -s "$mubeng" "$work/mubeng"

# scenario file -> the checks that must fail (empty: must pass)
declare -A expect=(
	[good.yaml]=""
	[bad-orphan.yaml]="orphans"
	[bad-setsid.yaml]="orphans"
	[bad-orphan-short.yaml]="orphans"
	[good-orphan-short.yaml]=""
	[bad-orphan-sibling-stop.yaml]="orphans"
	[good-orphan-sibling-stop.yaml]=""
	[bad-orphan-stop-sibling.yaml]="orphans"
	[bad-orphan-stalled.yaml]="orphans"
	[good-orphan-stop-sibling.yaml]=""
	[bad-fd.yaml]="fd-growth"
	[bad-memory.yaml]="memory-growth"
	[bad-port.yaml]="ports"
	[bad-zombie.yaml]="zombies"
	[bad-lossy-queue.yaml]="history"
	[bad-tmpfiles.yaml]="files"
	[good-tmpfiles.yaml]=""
	[bad-proxyline-layers-off.yaml]="orphans"
	[bad-pyqueue-script.yaml]="orphans"
	[good-pyqueue-fixed.yaml]=""
	[bad-celery-seed.yaml]="orphans"
	[bad-celery-seed-short.yaml]="orphans"
	[good-celery-fixed.yaml]=""
	[bad-scrape-no-graceful-stop.yaml]="graceful-exit,probe,probe,probe,probe"
	[bad-scrape-partial-file.yaml]="probe"
	[test1-scrape-sigterm]=""
	[test2-scrape-sigkill]=""
	[check-sigterm]=""
	[check-exec-sigkill]=""
	[test3-queue-integration]=""
	[test4-normal-cleanup]=""
	[test5-worker-sigkill-mid-task]=""
	[restart-loop]=""
	[h2-paused-worker]=""
	[rotate-sigterm-tunnels]=""
	[rotate-upstream-killed]=""
	[run-lifecycle]=""
	[bad-rotate-no-drain.yaml]="workload"
)

printf '%-30s %-15s %6s %6s  %s\n' scenario "must fail" ok wrong "wrong outcomes"
all_ok=1
for f in ${only:-good.yaml bad-orphan.yaml bad-setsid.yaml bad-orphan-short.yaml good-orphan-short.yaml \
	bad-orphan-sibling-stop.yaml good-orphan-sibling-stop.yaml bad-orphan-stop-sibling.yaml good-orphan-stop-sibling.yaml bad-orphan-stalled.yaml bad-fd.yaml bad-memory.yaml bad-port.yaml bad-zombie.yaml \
	bad-lossy-queue.yaml bad-tmpfiles.yaml good-tmpfiles.yaml bad-proxyline-layers-off.yaml bad-pyqueue-script.yaml good-pyqueue-fixed.yaml \
	bad-celery-seed.yaml bad-celery-seed-short.yaml good-celery-fixed.yaml \
	bad-scrape-no-graceful-stop.yaml bad-scrape-partial-file.yaml \
	test1-scrape-sigterm test2-scrape-sigkill check-sigterm check-exec-sigkill test3-queue-integration test4-normal-cleanup test5-worker-sigkill-mid-task restart-loop \
	h2-paused-worker rotate-sigterm-tunnels rotate-upstream-killed bad-rotate-no-drain.yaml run-lifecycle}; do
	if [ -z "${expect[$f]+set}" ]; then
		echo "killtest-repeat: unknown scenario $f (see the table in this script)" >&2
		exit 2
	fi
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
	# What went wrong, once per distinct line (numbers that vary between runs folded).
	if [ "$bad" -ne 0 ]; then
		awk -v want=",$want," '
			/^        (FAIL|UNKNOWN) / { name = $2; sub(/:$/, "", name)
				if ($1 == "FAIL" && index(want, "," name ",")) next
				print; next }
			/^        harness: / { print }' "$work/out.txt" |
			sed -E 's/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -5 | sed 's/^/    /'
	fi
done
[ "$all_ok" = 1 ]
