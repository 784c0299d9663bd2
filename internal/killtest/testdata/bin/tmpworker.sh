#!/usr/bin/env bash
# A worker for killtest's files check. Each task works in a temporary directory of its own
# (mktemp -d in $TMPDIR, as the seed's task did with tempfile.mkdtemp) and removes it when the
# task is done, and on SIGTERM. A SIGKILL in the middle of a task cannot be caught: the
# directory stays. The task waits with bash's `read -t` on a fifo in that directory, so the
# worker has no child process while it works (a SIGKILL orphans nothing). MODE:
#   leak   nothing more: every SIGKILL mid-task leaks a directory (known-bad)
#   sweep  at start, remove the directories of dead predecessors (tmpworker.<pid>.*), as a
#          supervisor's start-up sweep does (known-good: a restart after the kill cleans up)
mode=${1:-leak}
tmp=${TMPDIR:-/tmp}
if [ "$mode" = sweep ]; then
	for d in "$tmp"/tmpworker.*; do
		[ -d "$d" ] || continue
		owner=${d##*/tmpworker.}
		owner=${owner%%.*}
		if [ "$owner" != $$ ] && ! kill -0 "$owner" 2>/dev/null; then
			rm -rf "$d"
			echo "swept $d"
		fi
	done
fi
cur=
trap '[ -n "$cur" ] && rm -rf "$cur"; exit 0' TERM
echo "worker ready"
n=0
while :; do
	n=$((n + 1))
	cur=$(mktemp -d "$tmp/tmpworker.$$.XXXXXX")
	echo "chunk $n" >"$cur/chunk.txt"
	mkfifo "$cur/wait"
	exec 9<>"$cur/wait"
	echo "task $n started in $cur"
	read -r -t 0.3 -u 9 _ || true
	exec 9<&-
	rm -rf "$cur"
	cur=
done
