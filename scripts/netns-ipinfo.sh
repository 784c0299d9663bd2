#!/bin/sh
# netns-ipinfo.sh COMMAND [ARG...]: run COMMAND in a private network and mount namespace where
# the only network is loopback and ipinfo.io is 127.0.0.2 (bind-mounted /etc/hosts), so a tool
# that always asks https://ipinfo.io/json (mubeng's check mode) reaches a judge served on
# 127.0.0.2:443 and nothing can leave the machine. Used by scripts/bench-check.sh to measure
# mubeng beside proxyline. Needs root (or CAP_SYS_ADMIN) and unshare(1) and ip(8). The namespaces
# end with COMMAND; the host's /etc/hosts and network are never touched. Exit status: COMMAND's,
# or non-zero with a message when the namespace cannot be made.
set -eu
if [ "${NETNS_IPINFO_INSIDE:-}" != 1 ]; then
	command -v unshare >/dev/null && command -v ip >/dev/null || {
		echo "netns-ipinfo.sh: unshare(1) and ip(8) are needed" >&2
		exit 3
	}
	# --mount makes the bind mount below private to this namespace (unshare's default propagation
	# is private); --net gives a network namespace with a loopback device and nothing else.
	NETNS_IPINFO_INSIDE=1 exec unshare --net --mount -- "$0" "$@"
fi
ip link set lo up
hosts=$(mktemp)
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.0.2\tipinfo.io\n' >"$hosts"
chmod 644 "$hosts"
mount --bind "$hosts" /etc/hosts
rm -f "$hosts" # the mount keeps the file alive until the namespace ends; nothing is left behind
exec "$@"
