package detect

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/proctab"
)

// PortOptions configures Ports.
type PortOptions struct {
	// Ports the system under test was configured to listen on; each must be bindable again.
	Ports []int
	// Host is the address the bind test uses. It must be a loopback address. Default 127.0.0.1.
	Host string
}

// Ports is the listening-socket detector, run after the components stopped: it fails for every
// LISTEN socket (tcp and tcp6 tables) whose inode is held by an attributed process, and for
// every configured port where net.Listen on Host fails. It reads the socket tables once.
func Ports(o *observe.Observer, opts PortOptions) Result {
	const check = "ports"
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return unknown(check, fmt.Sprintf("bind test host %q is not a loopback address", host))
	}
	if err := o.Refresh(); err != nil {
		return unknown(check, fmt.Sprintf("could not read the process table: %v", err))
	}
	listening, err := proctab.ListeningTCP()
	if err != nil {
		return unknown(check, fmt.Sprintf("could not read the tcp socket tables: %v", err))
	}
	byInode := make(map[uint64]proctab.Socket, len(listening))
	for _, s := range listening {
		byInode[s.Inode] = s
	}
	res := Result{Check: check}
	for _, p := range liveOnly(o.Alive()) {
		inodes, err := proctab.SocketInodes(p.PID)
		if err != nil {
			continue // it exited meanwhile
		}
		for ino := range inodes {
			if s, ok := byInode[ino]; ok {
				e := evidenceOf(p, time.Now())
				e.Class = "listening"
				e.Detail = fmt.Sprintf("still listening on %s (socket inode %d)", net.JoinHostPort(s.Addr, strconv.Itoa(s.Port)), ino)
				res.Evidence = append(res.Evidence, e)
			}
		}
	}
	for _, port := range opts.Ports {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			continue
		}
		e := Evidence{Class: "port", Detail: fmt.Sprintf("%s is not bindable: %v%s", addr, err, holders(listening, port))}
		res.Evidence = append(res.Evidence, e)
	}
	if len(res.Evidence) == 0 {
		return pass(check, fmt.Sprintf("no listening socket held by the system, %d configured port(s) bindable", len(opts.Ports)))
	}
	res.Verdict = Fail
	res.Summary = fmt.Sprintf("%d listening socket(s) or port(s) still held after stop", len(res.Evidence))
	return res
}

// holders names the processes holding LISTEN sockets on port. It scans every process's fds,
// which is slow: only on failure.
func holders(listening []proctab.Socket, port int) string {
	want := map[uint64]bool{}
	for _, s := range listening {
		if s.Port == port {
			want[s.Inode] = true
		}
	}
	if len(want) == 0 {
		return " (no listening socket on it: a connection's local port or a socket in TIME_WAIT holds it)"
	}
	procs, err := proctab.NewReader().Snapshot(nil)
	if err != nil {
		return ""
	}
	out := ""
	for _, p := range procs {
		inodes, err := proctab.SocketInodes(p.PID)
		if err != nil {
			continue
		}
		for ino := range inodes {
			if want[ino] {
				args, _ := proctab.Cmdline(p.PID)
				out += fmt.Sprintf("; held by pid %d (%s)", p.PID, cmdline(args, p.Comm))
				break
			}
		}
	}
	return out
}
