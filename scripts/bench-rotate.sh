#!/usr/bin/env bash
# Benchmark of `proxyline serve` (docs/rotate.md): in one run, wrk -t2 -c50 through
#   (a) our rotator over 500 lab HTTP upstreams to the lab backend,
#   (b) mubeng's server mode on the same list (a build is in ../shared/peers/, or on PATH),
#   (c) one lab upstream hit directly: the floor;
# then a 300 MB download through fresh instances of both, with their peak RSS. Prints one table,
# with the CPU each proxy process spent per request served (user+system from /proc: a measure the
# machine's load distorts much less than latency).
# Needs wrk (apt-get install -y wrk) and curl. Environment: DURATION (wrk seconds, default 10),
# RUNS (default 1), UPSTREAMS (default 500), BODY (bytes of each answer, default 100), WARMUP
# (seconds of unmeasured wrk through each of the three first, default 3: the measured runs are the
# steady state, where our rotator has its tunnels to the upstreams open), SERVE_ENV (extra
# environment for our rotator only, e.g. GOGC=100 for Go's default collector instead of serve's 400).
# Each run measures the three one after the other, in an order that rotates from run to run
# (floor, ours, mubeng; then ours, mubeng, floor; ...), so that another process's burst does not
# always fall on the same one; each run prints its own table and ratios, with the load average.
# Exit status 1 when a target is missed by the MEDIAN over RUNS of the per-run ratio (printed last;
# use RUNS=3 or more): >= 2x mubeng's req/s, p99 <= 0.5x mubeng's, p50 within 1 ms of the floor;
# and regardless of the median, when any run had an error through our rotator or the 300 MB
# download peaked over 64 MiB RSS (or came short).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
RUNS=${RUNS:-1}
UPSTREAMS=${UPSTREAMS:-500}
BODY=${BODY:-100}
WARMUP=${WARMUP:-3}
SERVE_ENV=${SERVE_ENV:-}
BIG=$((300 << 20))

command -v wrk >/dev/null || { echo "bench-rotate: wrk not found (apt-get install -y wrk)" >&2; exit 2; }
command -v curl >/dev/null || { echo "bench-rotate: curl not found" >&2; exit 2; }
MUBENG=${MUBENG:-}
for m in "$MUBENG" ../shared/peers/mubeng /work/shared/peers/mubeng "$(command -v mubeng || true)"; do
	if [ -n "$m" ] && [ -x "$m" ]; then MUBENG=$m; break; fi
done
[ -x "${MUBENG:-}" ] || { echo "bench-rotate: mubeng not found (../shared/peers/mubeng or PATH): skipping the comparison" >&2; MUBENG=; }

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitport() { # host port: poll until it accepts, 30 s at most
	for _ in $(seq 300); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done
	echo "bench-rotate: nothing listens on $1:$2" >&2; return 1
}
waitfile() { for _ in $(seq 300); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "bench-rotate: no $1" >&2; return 1; }
hwm() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$1/status"; }
cpu_ticks() { [ -n "${1:-}" ] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; } # utime+stime

go build -o "$tmp/proxyline" ./cmd/proxyline
"$tmp/proxyline" lab --dir "$tmp/lab" --http "$UPSTREAMS" --backend </dev/null >/dev/null 2>"$tmp/lab.log" &
pids+=($!)
waitfile "$tmp/lab/backend.txt"
backend=$(head -1 "$tmp/lab/backend.txt")
backend_host=${backend#http://}; backend_host=${backend_host%/}
first=$(head -1 "$tmp/lab/candidates.txt"); first=${first#http://}

start_ours() { # port
	env PROXYLINE_LOG_LEVEL=warn $SERVE_ENV "$tmp/proxyline" serve --listen "127.0.0.1:$1" --from "$tmp/lab/candidates.txt" \
		</dev/null >/dev/null 2>>"$tmp/serve.log" &
	pids+=($!); echo $! >"$tmp/pid"
	waitport 127.0.0.1 "$1"
}
start_mubeng() { # port
	"$MUBENG" -a "127.0.0.1:$1" -f "$tmp/lab/candidates.txt" -t 120s </dev/null >/dev/null 2>>"$tmp/mubeng.log" &
	pids+=($!); echo $! >"$tmp/pid"
	waitport 127.0.0.1 "$1"
}

cat >"$tmp/abs.lua" <<LUA
wrk.path = "${backend}bytes/${BODY}"
wrk.headers["Host"] = "${backend_host}"
LUA

# bench NAME HOST:PORT [PID]: one wrk run; prints "name rps p50_ms p99_ms errors cpu_us_per_request"
# (the CPU of process PID during the run, user+system, per request served; 0 without PID).
bench() {
	local out c0 c1 hz
	hz=$(getconf CLK_TCK)
	c0=$(cpu_ticks "${3:-}")
	out=$(wrk -t2 -c50 -d"${DURATION}s" --latency -s "$tmp/abs.lua" "http://$2" 2>&1)
	c1=$(cpu_ticks "${3:-}")
	echo "$out" >>"$tmp/wrk.log"
	echo "$out" | awk -v name="$1" -v ticks=$((c1 - c0)) -v hz="$hz" '
		function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
		/requests in/ {n=$1} /Requests\/sec/ {rps=$2} / 50%/ {p50=ms($2)} / 99%/ {p99=ms($2)}
		/Non-2xx/ {err+=$NF} /Socket errors/ {for (i=4;i<=NF;i+=2) err+=$i+0}
		END {printf "%s %.0f %.3f %.3f %d %.0f\n", name, rps, p50, p99, err, (n > 0 ? ticks / hz * 1e6 / n : 0)}'
}

ours_port=$(freeport)
start_ours "$ours_port"
ours_pid=$(cat "$tmp/pid")
mub_pid=
if [ -n "$MUBENG" ]; then mub_port=$(freeport); start_mubeng "$mub_port"; mub_pid=$(cat "$tmp/pid"); fi
status=0
if [ "$WARMUP" -gt 0 ]; then
	for hp in "$first" "127.0.0.1:$ours_port" ${MUBENG:+"127.0.0.1:$mub_port"}; do
		wrk -t2 -c50 -d"${WARMUP}s" -s "$tmp/abs.lua" "http://$hp" >/dev/null 2>&1
	done
fi
# order RUN: the three measurements of run RUN, rotated by one place per run.
order() {
	local all=(floor proxyline ${MUBENG:+mubeng}) i n
	n=${#all[@]}
	for ((i = 0; i < n; i++)); do echo "${all[$(((i + $1 - 1) % n))]}"; done
}
measure() { # name
	case $1 in
	floor) bench floor "$first" ;;
	proxyline) bench proxyline "127.0.0.1:$ours_port" "$ours_pid" ;;
	mubeng) bench mubeng "127.0.0.1:$mub_port" "$mub_pid" ;;
	esac
}
: >"$tmp/ratios"
for run in $(seq "$RUNS"); do
	res=$(for who in $(order "$run"); do measure "$who"; done)
	echo
	echo "run $run/$RUNS: wrk -t2 -c50 -d${DURATION}s, $UPSTREAMS lab HTTP upstreams, ${BODY}-byte answers; order $(order "$run" | paste -sd' '); load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "$res" | awk -v ratios="$tmp/ratios" '
		{name[NR]=$1; rps[$1]=$2; p50[$1]=$3; p99[$1]=$4; err[$1]=$5; cpu[$1]=$6}
		END {
			printf "| %-9s | %9s | %9s | %9s | %6s | %17s |\n", "through", "req/s", "p50 ms", "p99 ms", "errors", "proxy CPU us/req"
			printf "|-----------|-----------|-----------|-----------|--------|-------------------|\n"
			for (i=1;i<=NR;i++) { n=name[i]; c = (n == "floor" ? "-" : sprintf("%.0f", cpu[n]))
				printf "| %-9s | %9.0f | %9.3f | %9.3f | %6d | %17s |\n", n, rps[n], p50[n], p99[n], err[n], c }
			line = sprintf("p50diff %.3f errors %d", p50["proxyline"]-p50["floor"], err["proxyline"])
			if ("mubeng" in rps && rps["mubeng"] > 0 && p99["mubeng"] > 0) {
				printf "req/s ours/mubeng %.2f (target >= 2)   p99 ours/mubeng %.2f (target <= 0.5)   CPU per request ours/mubeng %.2f\n", rps["proxyline"]/rps["mubeng"], p99["proxyline"]/p99["mubeng"], (cpu["mubeng"] > 0 ? cpu["proxyline"]/cpu["mubeng"] : 0)
				line = line sprintf(" rps %.4f p99 %.4f cpu %.4f", rps["proxyline"]/rps["mubeng"], p99["proxyline"]/p99["mubeng"], (cpu["mubeng"] > 0 ? cpu["proxyline"]/cpu["mubeng"] : 0))
			}
			printf "p50 ours - floor %.3f ms (target <= 1)\n", p50["proxyline"]-p50["floor"]
			print line >>ratios
		}'
done

# median_list KEY: the per-run values after KEY, in run order.
median_list() { awk -v k="$1" '{for (i=1;i<NF;i++) if ($i == k) printf "%s%.2f", (n++ ? ", " : ""), $(i+1)}' "$tmp/ratios"; }
# median KEY: the median over the runs of the value after KEY in $tmp/ratios ("" without one).
median() {
	awk -v k="$1" '{for (i=1;i<NF;i++) if ($i == k) print $(i+1)}' "$tmp/ratios" | sort -g |
		awk '{v[NR]=$1} END {if (NR == 0) exit; m = (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2); printf "%.3f", m}'
}
echo
echo "median over $RUNS run(s), the exit status's verdict:"
med_p50=$(median p50diff)
errors=$(awk '{for (i=1;i<NF;i++) if ($i == "errors") s += $(i+1)} END {print s+0}' "$tmp/ratios")
if [ -n "$MUBENG" ]; then
	med_rps=$(median rps) med_p99=$(median p99) med_cpu=$(median cpu)
	echo "req/s ours/mubeng $med_rps (target >= 2)   p99 ours/mubeng $med_p99 (target <= 0.5)   CPU per request ours/mubeng $med_cpu"
	echo "per run: req/s $(median_list rps)   p99 $(median_list p99)"
	awk -v r="$med_rps" -v p="$med_p99" 'BEGIN {exit !(r < 2 || p > 0.5)}' && status=1
fi
echo "p50 ours - floor $med_p50 ms (target <= 1); errors through ours in all runs: $errors"
awk -v d="$med_p50" 'BEGIN {exit !(d > 1)}' && status=1
[ "$errors" -eq 0 ] || status=1

# 300 MB through fresh instances: time to the first byte, total, peak RSS.
big() { # name port
	local port=$2 pid
	if [ "$1" = proxyline ]; then start_ours "$port"; else start_mubeng "$port"; fi
	pid=$(cat "$tmp/pid")
	local t
	t=$(curl -sS -o /dev/null -x "http://127.0.0.1:$port" -w '%{size_download} %{time_starttransfer} %{time_total}' "${backend}bytes/$BIG") || t="0 0 0"
	echo "$1 $t $(hwm "$pid")"
	# big runs in a pipeline's subshell: its pids+= never reaches cleanup, so it stops its own
	# instance (they were left running after every run of the script before).
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
echo
echo "300 MB download (curl -x, plain HTTP), fresh processes:"
printf "| %-9s | %11s | %14s | %9s | %12s |\n" through bytes "first byte s" "total s" "peak RSS MiB"
printf "|-----------|-------------|----------------|-----------|--------------|\n"
for who in proxyline ${MUBENG:+mubeng}; do
	big "$who" "$(freeport)" | while read -r n b f tot rss; do
		printf "| %-9s | %11s | %14s | %9s | %12s |\n" "$n" "$b" "$f" "$tot" "$rss"
		if [ "$n" = proxyline ] && { [ "$rss" -gt 64 ] || [ "$b" != "$BIG" ]; }; then exit 1; fi
	done || status=1
done
exit $status
