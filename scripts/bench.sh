#!/usr/bin/env bash
# All of proxyline's benchmarks, against the loopback lab only, each printing its own table:
#   1. the checker on issue A's 20,000-proxy lab, http and https judges, mubeng beside it when
#      found (scripts/bench-check.sh)
#   2. the queue: enqueue, pool write, queue vs check, SIGKILL to rerun (scripts/bench-queue.sh)
#   3. supervision overhead per layer (go test -bench StartStop ./internal/supervise)
#   4. killtest's observer cost at 10 Hz with 500 extra processes (proctab, observe)
#   5. killtest's built-in suite, timed
#   6. the rotator against mubeng and the floor (scripts/bench-rotate.sh; needs wrk)
# The machine is shared and noisy: compare within one run. Usage: scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== 1. proxyline check, 20,000 candidates, -c 1000 -t 2s"
scripts/bench-check.sh
echo
echo "== 2. queue"
scripts/bench-queue.sh 1
echo
echo "== 3. supervised start+stop of /bin/true, per layer (target: all layers < 10 ms, < 8 MB per task)"
go test -run '^$' -bench StartStop -benchtime 200x ./internal/supervise/ | awk '/^Benchmark/ {
	name = $1; sub(/^BenchmarkStartStop\//, "", name); sub(/-[0-9]+$/, "", name)
	rss = ""; for (i = 1; i <= NF; i++) if ($(i+1) == "init-RSS-KiB") rss = sprintf(", init RSS %.1f MiB", $i / 1024)
	printf "  %-28s %7.2f ms%s\n", name, $3 / 1e6, rss }'
echo
echo "== 4. killtest observer (target: <= 5 % of one core at 10 Hz with 500 processes)"
go test -run '^$' -bench 'Snapshot|Tick|Enrich' -benchtime 2s ./internal/proctab ./internal/killtest/observe | awk '/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name); cpu = ""; procs = ""
	for (i = 1; i <= NF; i++) { if ($(i+1) == "cpu-ms/op") cpu = $i; if ($(i+1) == "procs") procs = $i }
	if (cpu != "") printf "  %-28s %6.2f ms CPU per op (%s processes on the machine)\n", name, cpu, procs
	else printf "  %-28s %6.2f ms per op\n", name, $3 / 1e6 }'
echo "  (a tick runs 10 times a second, an enrichment once: CPU share = 10 × tick + enrich, in ms per s / 10)"
echo
echo "== 5. killtest built-in suite (target: <= 60 s)"
go build -o "$work" ./cmd/proxyline ./cmd/killtest
start=$(date +%s.%N)
"$work/killtest" run --bin "$work" --out "$work" | tail -1
awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "  took %.1f s\n", b - a }'
echo
echo "== 6. proxyline serve vs mubeng vs one lab proxy (wrk -t2 -c50), and a 300 MB download"
if command -v wrk >/dev/null; then scripts/bench-rotate.sh || true; else echo "  skipped: no wrk (apt-get install -y wrk)"; fi
