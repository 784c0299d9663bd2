#!/usr/bin/env bash
# A reproducible busy machine for the tests: N CPU hogs plus a process-churn loop, as other work
# on a shared machine makes (the owner's rule: a test that depends on a quiet machine is a
# defect). The churn starts short-lived processes all the time: plain children that exit at once,
# `sleep`s of a few milliseconds to a second, and double-forked ones that are re-parented (to the
# nearest subreaper or init) before they exit, so pids are reused quickly and /proc always holds
# strangers named sh and sleep. Nothing it starts carries a test cookie, and none of it is a
# child of the tests: the load runs in its own session and process group, which is killed by its
# PGID when the script exits (end of COMMAND, end of SECONDS, SIGINT or SIGTERM).
#
#   scripts/busy.sh N [SECONDS]           load for SECONDS (default: until interrupted)
#   scripts/busy.sh N -- COMMAND [ARG...] load while COMMAND runs; exits with COMMAND's status
#
# Example: scripts/busy.sh 6 -- go test -race -count=1 ./internal/supervise/
#
# CHURN (default 1) sets the number of churn loops. Each hog adds about 1 to the load average,
# each churn loop about 1 more.
set -euo pipefail
n=${1:?usage: busy.sh N [SECONDS | -- COMMAND...]}
shift
churn=${CHURN:-1}

# The load itself: run as `busy.sh --load N CHURN` in a new session (its pid is its pgid).
if [ "$n" = --load ]; then
	hogs=$1 loops=$2
	for _ in $(seq "$hogs"); do
		sh -c 'while :; do :; done' &
	done
	for _ in $(seq "$loops"); do
		(
			i=0
			while :; do
				i=$((i + 1))
				/bin/true
				sh -c 'exit 0'
				sleep 0.00$((i % 10)) &
				# double fork: the middle sh exits at once, its sleep is re-parented
				sh -c "sleep 0.$((i % 10)) & exit 0"
				[ $((i % 50)) -eq 0 ] && wait
			done
		) &
	done
	wait
	exit 0
fi

case "$n" in '' | *[!0-9]*)
	echo "busy.sh: N must be a number of CPU hogs, got $n" >&2
	exit 2
	;;
esac

setsid "$0" --load "$n" "$churn" </dev/null >/dev/null 2>&1 &
load=$!
stop() {
	# setsid forks when the script is a group leader; it never is here (started with &), so
	# $load is the session's leader and its pgid. Never signal a pgid <= 1.
	if [ "$load" -gt 1 ]; then
		kill -TERM -- "-$load" 2>/dev/null || true
	fi
	wait "$load" 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Wait until the load's session exists, so a COMMAND starts on a busy machine.
for _ in $(seq 100); do
	[ "$(ps -o sid= -p "$load" 2>/dev/null | tr -d ' ')" = "$load" ] && break
	sleep 0.05
done
echo "busy.sh: $n CPU hogs and $churn churn loops in process group $load" >&2

if [ "${1:-}" = -- ]; then
	shift
	status=0
	"$@" || status=$?
	exit "$status"
fi
if [ -n "${1:-}" ]; then
	sleep "$1" &
	wait $!
else
	wait "$load"
fi
