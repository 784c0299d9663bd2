#!/bin/sh
# One request to cycler.sh: write a line to its input fifo and wait for the acknowledgement.
in=$1 ack=$2 n=${3:-x}
echo "$n" >"$in"
read -r reply <"$ack"
echo "$reply"
