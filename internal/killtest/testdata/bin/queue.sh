#!/bin/sh
# A toy queue for killtest's task-history check: submits ids 1..20 (written to $1/submitted.txt)
# and writes a JSON line result per processed task to $1/results.jsonl, with the checksums of the
# expected outputs in $1/checksums.txt. MODE good processes every task once; lossy drops task 7.
dir=$1 mode=${2:-good}
: >"$dir/submitted.txt"
: >"$dir/results.jsonl"
i=1
while [ "$i" -le 20 ]; do
	echo "$i" >>"$dir/submitted.txt"
	i=$((i + 1))
done
while read -r id; do
	if [ "$mode" = lossy ] && [ "$id" = 7 ]; then
		continue
	fi
	printf '{"id":"%s","output":"checked %s"}\n' "$id" "$id" >>"$dir/results.jsonl"
done <"$dir/submitted.txt"
