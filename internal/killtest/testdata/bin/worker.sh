#!/bin/sh
# A worker for killtest's known-good and known-bad systems. Each "task" runs a checker child
# (sleep 600 stands in for mubeng). The known-good worker is goodworker/ (Go). MODE:
#   naive   start the checker with a plain fork: a SIGKILL of the worker orphans it
#   setsid  on SIGTERM kill its own process group and exit 0, but one checker was started in a
#           new session (setsid) and escapes the group kill
mode=${1:-naive}
child=
case $mode in
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
	# The escapee says so once it is in its own session (the scenario waits for that line).
	setsid sh -c 'echo "escapee in its own session"; exec sleep 600' &
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
