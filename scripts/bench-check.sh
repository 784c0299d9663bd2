#!/bin/sh
# Benchmark of `proxyline check`: builds proxyline, starts a 20,000-proxy lab in its own process,
# checks it with -c 1000 -t 2s and prints wall time, CPU time, peak RSS, false positives and false
# negatives (see docs/check.md). Extra arguments go to the benchmark program, e.g. -tls, -keep,
# -c 500, -http 1000. Exit status 1 when a target is missed.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/proxyline" ./cmd/proxyline
go build -o "$tmp/bench" ./internal/check/bench
"$tmp/bench" -proxyline "$tmp/proxyline" "$@"
