#!/usr/bin/env bash
# A long-lived server for killtest's trend checks: for each request line on the fifo $2 it does
# one unit of work and acknowledges on the fifo $3. MODE:
#   none  does nothing that accumulates (known-good)
#   fd    opens one more file descriptor per request and never closes it (fd leak)
#   mem   keeps 8 MiB more per request (memory leak)
export LC_ALL=C # byte strings: bash copies them much faster
mode=$1 in=$2 ack=$3
chunk=
if [ "$mode" = mem ]; then
	chunk=$(head -c 8388608 /dev/zero | tr '\0' x)
fi
keep=()
echo "cycler ready"
while :; do
	read -r line <"$in" || continue
	case $mode in
	fd) exec {fd}</dev/null ;;
	mem) keep+=("$chunk") ;;
	esac
	echo "ok $line" >"$ack"
done
