#!/bin/sh
# Benchmark of `proxyline check` (docs/benchmarks.md): builds proxyline and the benchmark program,
# starts a 20,000-proxy lab in its own process and prints one table: proxyline with -c 1000 -t 2s
# through the lab's http judge and through an https judge, and mubeng's check mode through the
# same https judge beside them: wall time, CPU time, CPU as a ratio of mubeng's, peak RSS, false
# positives and negatives, TLS handshakes (full/resumed) and key exchange as the judge saw them.
#
# mubeng is looked for in $MUBENG, ../shared/peers/mubeng (from the project root), then PATH;
# without it proxyline is measured alone. mubeng always asks https://ipinfo.io/json, so the whole
# benchmark then runs inside scripts/netns-ipinfo.sh (a private network namespace, lo only, with
# ipinfo.io mapped to the judge's 127.0.0.2): nothing leaves the machine. Without root the
# namespace cannot be made and mubeng is skipped.
#
# Extra arguments go to the benchmark program, e.g. -only https, -keep, -c 500, -http 1000.
# Exit status 1 when a target is missed.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/proxyline" ./cmd/proxyline
go build -o "$tmp/bench" ./scripts/checkbench

mubeng=${MUBENG:-}
if [ -z "$mubeng" ] && [ -x ../shared/peers/mubeng ]; then
	mubeng=../shared/peers/mubeng
fi
if [ -z "$mubeng" ]; then
	mubeng=$(command -v mubeng || true)
fi
if ! scripts/netns-ipinfo.sh true 2>"$tmp/netns.err"; then
	echo "bench-check: no private network namespace ($(head -1 "$tmp/netns.err")): mubeng is not measured" >&2
	"$tmp/bench" -proxyline "$tmp/proxyline" "$@"
elif [ -z "$mubeng" ]; then
	echo "bench-check: mubeng not found (\$MUBENG, ../shared/peers/mubeng, PATH): proxyline is measured alone" >&2
	scripts/netns-ipinfo.sh "$tmp/bench" -proxyline "$tmp/proxyline" -judge-name ipinfo.io "$@"
else
	scripts/netns-ipinfo.sh "$tmp/bench" -proxyline "$tmp/proxyline" -judge-name ipinfo.io \
		-mubeng "$(realpath "$mubeng")" "$@"
fi
