#!/bin/sh
# A worker for killtest's known-good and known-bad systems. Each "task" runs a checker child
# (sleep 600 stands in for mubeng). The known-good worker is goodworker/ (Go). MODE:
#   naive   start the checker with a plain fork: a SIGKILL of the worker orphans it
#   setsid  on SIGTERM kill its own process group and exit 0, but one checker was started in a
#           new session (setsid) and escapes the group kill
#   short   each task is a checker of about 3 s (sleep 3) started with a plain fork: a SIGKILL of
#           the worker orphans it, and it finishes by itself seconds later (3 s, not 1: at load 40 the fault
#           landed so late in a 1 s checker that it outlived the worker by less than 200 ms)
#   client ADDR
#           each task is a client blocked on the server at ADDR (blocker client): a SIGKILL of
#           the worker orphans it until the server goes away
#   short-fixed, client-fixed ADDR
#           the same tasks with the proper fix: the checker in a session of its own with a
#           parent-death SIGKILL (setsid + setpriv --pdeathsig), so it dies with the worker
mode=${1:-naive}
addr=${2:-}
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
short | short-fixed)
	echo "worker ready"
	while :; do
		if [ "$mode" = short ]; then
			sleep 3 &
		else
			setsid setpriv --pdeathsig KILL sleep 3 &
		fi
		wait "$!"
	done
	;;
client | client-fixed)
	echo "worker ready"
	while :; do
		if [ "$mode" = client ]; then
			blocker client "$addr" &
		else
			setsid setpriv --pdeathsig KILL blocker client "$addr" &
		fi
		wait "$!"
		sleep 0.1 # the server is gone: do not spin
	done
	;;
*)
	echo "worker.sh: unknown mode $mode" >&2
	exit 2
	;;
esac
