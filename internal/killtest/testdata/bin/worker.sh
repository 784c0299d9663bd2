#!/bin/sh
# A worker for killtest's known-good and known-bad systems. Each "task" runs a checker child
# (sleep 600 stands in for mubeng). MODE:
#   good    on SIGTERM stop the checker, wait for it, exit 0; the checker gets a parent-death
#           SIGKILL (setpriv), so even a SIGKILL of the worker cannot orphan it
#   naive   start the checker with a plain fork: a SIGKILL of the worker orphans it
#   setsid  on SIGTERM kill its own process group and exit 0, but one checker was started in a
#           new session (setsid) and escapes the group kill
mode=${1:-good}
child=
case $mode in
good)
	trap 'if [ -n "$child" ]; then kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; fi; exit 0' TERM
	echo "worker ready"
	while :; do
		setpriv --pdeathsig KILL sleep 600 &
		child=$!
		echo "task started pid $child"
		wait "$child"
	done
	;;
naive)
	echo "worker ready"
	while :; do
		sleep 600 &
		child=$!
		echo "task started pid $child"
		wait "$child"
	done
	;;
setsid)
	trap 'trap "" TERM; kill -TERM 0; exit 0' TERM
	setsid sleep 600 &
	echo "worker ready"
	while :; do
		sleep 600 &
		child=$!
		wait "$child"
	done
	;;
*)
	echo "worker.sh: unknown mode $mode" >&2
	exit 2
	;;
esac
