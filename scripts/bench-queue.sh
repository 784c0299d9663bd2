#!/usr/bin/env bash
# bench-queue.sh: the queue's benchmarks in one table (docs/queue.md, "Benchmarks").
# Loopback only: the lab runs in the test process; PostgreSQL at 127.0.0.1:5432 (database test)
# is used when reachable. Usage: scripts/bench-queue.sh [runs of the 20k comparison, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

go test -count=1 -run '^$' -bench 'Enqueue100k|RecordChunk' -benchtime 3x ./internal/queue/ >>"$out" 2>&1
go test -count="$runs" -run '^$' -bench QueueVsCheck -benchtime 1x ./internal/queue/ >>"$out" 2>&1
go test -race -count=1 -run TestKillWorkerMidChunk -v ./internal/queue/ >>"$out" 2>&1 || true

printf '%-52s %s\n' "benchmark" "result"
awk '
/^BenchmarkEnqueue100k\// { split($1, a, "/"); sub(/-[0-9]+$/, "", a[2]); printf "%-52s %.3f s/op (target <= 2 s)\n", "enqueue 100,000 proxies, chunks of 100, " a[2], $3/1e9 }
/^BenchmarkRecordChunk\// { split($1, a, "/"); sub(/-[0-9]+$/, "", a[2]); printf "%-52s %.2f ms/op\n", "pool write of one 100-proxy job, " a[2], $3/1e6 }
/^BenchmarkQueueVsCheck\// { split($1, a, "/"); sub(/-[0-9]+$/, "", a[3])
                            for (i = 1; i <= NF; i++) { if ($(i+1) == "check-s") c = $i; if ($(i+1) == "queue-s") q = $i; if ($(i+1) == "ratio") r = $i }
                            printf "%-52s check %.2f s, queue %.2f s, ratio %.3f (target <= 1.15)\n", "20,000-proxy lab (" a[2] "), check vs 2 workers, " a[3], c, q, r }
/running again:/          { sub(/.*process_test.go:[0-9]+: /, ""); printf "%-52s %s (target <= 2 s)\n", "SIGKILL to rerun (-race)", $0 }
/^(FAIL|panic)/           { print "FAILED: see the go test output"; bad = 1 }
END { exit bad }
' "$out"
