package proctab

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Socket is one listening row of /proc/net/tcp or /proc/net/tcp6.
type Socket struct {
	Addr  string // local address, e.g. "127.0.0.1" or "::"
	Port  int
	Inode uint64
}

// tcpListen is the st value of a socket in LISTEN state in /proc/net/tcp.
const tcpListen = 0x0A

// ListeningTCP returns the listening TCP sockets (IPv4 and IPv6) of the caller's network
// namespace. It asks the kernel through NETLINK_SOCK_DIAG with a LISTEN filter, which stays fast
// when the machine has 100 000 connections, and falls back to reading /proc/net/tcp{,6} when
// sock_diag is unavailable. Call it at phase boundaries, not at 10 Hz.
func ListeningTCP() ([]Socket, error) {
	v4, err4 := listeningDiag(unix.AF_INET)
	v6, err6 := listeningDiag(unix.AF_INET6)
	if err4 == nil && (err6 == nil || errors.Is(err6, unix.EAFNOSUPPORT) || errors.Is(err6, unix.ENOENT)) {
		return append(v4, v6...), nil
	}
	return listeningProc()
}

// listeningProc reads the LISTEN rows of /proc/net/tcp and /proc/net/tcp6. A missing tcp6 table
// (IPv6 disabled) is not an error.
func listeningProc() ([]Socket, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, fmt.Errorf("open /proc: %w", err)
	}
	var out []Socket
	for _, read := range []func() (procfs.NetTCP, error){fs.NetTCP, fs.NetTCP6} {
		rows, err := read()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("read tcp socket table: %w", err)
		}
		for _, r := range rows {
			if r.St != tcpListen {
				continue
			}
			out = append(out, Socket{Addr: r.LocalAddr.String(), Port: int(r.LocalPort), Inode: r.Inode})
		}
	}
	return out, nil
}

// SocketInodes returns the inodes of the sockets pid holds open.
func SocketInodes(pid int) (map[uint64]bool, error) {
	fds, err := FDs(pid)
	if err != nil {
		return nil, err
	}
	m := make(map[uint64]bool)
	for _, fd := range fds {
		if ino, ok := SocketInode(fd.Target); ok {
			m[ino] = true
		}
	}
	return m, nil
}

// SocketInode extracts the inode from an fd target "socket:[12345]".
func SocketInode(target string) (uint64, bool) {
	s, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}
