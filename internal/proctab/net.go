package proctab

import (
	"errors"
	"fmt"
	"net"
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
	//lint:ignore SA1019 the fallback for when sock_diag is unavailable: the netlink path procfs points to is the one ListeningTCP tries first
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

// Holder is a process holding a listening TCP socket.
type Holder struct {
	Key
	Comm    string
	Cmdline []string // empty when it could not be read
	Addr    string   // the socket's local address and port
}

// Command is the holder's command line, or its [comm] when the command line is unknown.
func (h Holder) Command() string {
	if len(h.Cmdline) == 0 {
		return "[" + h.Comm + "]"
	}
	return strings.Join(h.Cmdline, " ")
}

// PortHolders returns the processes holding a LISTEN socket (IPv4 or IPv6) that takes host's
// TCP port (one on host itself or on a wildcard address; host "" or a wildcard: any address),
// and how many processes' fds could not be read (another user's, without privilege): a
// holder may hide among them. It scans every process's fds, which is slow: call it at phase
// boundaries or on failure only. No holder and no error means no process listens on the port
// (a connection's local port or a socket in TIME_WAIT may still hold it).
func PortHolders(host string, port int) (holders []Holder, unreadable int, err error) {
	listening, err := ListeningTCP()
	if err != nil {
		return nil, 0, err
	}
	want := map[uint64]Socket{}
	for _, s := range listening {
		if s.Port == port && takes(s.Addr, host) {
			want[s.Inode] = s
		}
	}
	if len(want) == 0 {
		return nil, 0, nil
	}
	procs, err := NewReader().Snapshot(nil)
	if err != nil {
		return nil, 0, err
	}
	for _, p := range procs {
		inodes, err := SocketInodes(p.PID)
		if err != nil {
			if errors.Is(err, os.ErrPermission) {
				unreadable++
			}
			continue
		}
		for ino := range inodes {
			if s, ok := want[ino]; ok {
				args, _ := Cmdline(p.PID)
				holders = append(holders, Holder{Key: p.Key(), Comm: p.Comm, Cmdline: args, Addr: net.JoinHostPort(s.Addr, strconv.Itoa(s.Port))})
				break
			}
		}
	}
	return holders, unreadable, nil
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

// takes says whether a listener on addr takes host's address: the same IP, or a wildcard on
// either side (a name, which cannot be told apart, counts as taken).
func takes(addr, host string) bool {
	if host == "" {
		return true
	}
	a, h := net.ParseIP(addr), net.ParseIP(host)
	if a == nil || h == nil {
		return true
	}
	return a.IsUnspecified() || h.IsUnspecified() || a.Equal(h)
}
