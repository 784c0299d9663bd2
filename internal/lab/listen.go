package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxHeld bounds the connections blackholes hold open. Past it the blackhole listener stops
// accepting: new connections wait in the kernel backlog and then in SYN retries, which a client
// sees as the same timeout, at no cost in file descriptors.
const maxHeld = 4096

// headTimeout bounds how long a connection may take to send its request head or handshake.
const headTimeout = 30 * time.Second

// listenLoopback listens on the wildcard IPv4 address on a free port, with the socket bound to
// the loopback device (SO_BINDTODEVICE) so that packets arriving on other interfaces never reach
// it. If the kernel refuses the device binding, the listener still works: admit then is the only
// guard, and the port is visible (though every connection is closed at once) on other
// interfaces. It reports whether the device binding took.
func listenLoopback(ctx context.Context) (net.Listener, bool, error) {
	bound := false
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			bound = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "lo") == nil
		})
	}}
	ln, err := lc.Listen(ctx, "tcp4", "0.0.0.0:0")
	if err != nil {
		return nil, false, fmt.Errorf("listen on 0.0.0.0: %w", err)
	}
	return ln, bound, nil
}

// boundSocket is a TCP socket bound to 0.0.0.0:port but never listening: every connection to
// any 127.x.y.z on that port is refused, and the port stays reserved for the lab's life (the
// socket has no SO_REUSEADDR, so nobody else can bind or listen on it).
type boundSocket struct {
	fd   int
	port uint16
}

func bindRefused() (*boundSocket, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket for refused proxies: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("bind socket for refused proxies: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("getsockname of refused socket: %w", err)
	}
	in4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("refused socket: unexpected address %T", sa)
	}
	return &boundSocket{fd: fd, port: uint16(in4.Port)}, nil
}

func (b *boundSocket) Close() error {
	if b.fd < 0 {
		return nil
	}
	err := unix.Close(b.fd)
	b.fd = -1
	return err
}

// admit returns the proxy c reached on a listener of service svc, or nil if c must be closed:
// its local or remote address is not in 127.0.0.0/8, its local address is 127.0.0.1 (where real
// services live), or no proxy of that service has that address.
func (l *Lab) admit(c net.Conn, svc service) *entry {
	local, ok := localIP(c)
	if !ok || !isLoopback4(local) || local == netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		return nil
	}
	remote, ok := remoteIP(c)
	if !ok || !isLoopback4(remote) {
		return nil
	}
	e := l.byAddr[local.As4()]
	if e == nil || e.svc != svc {
		return nil
	}
	return e
}

func isLoopback4(a netip.Addr) bool { return a.Is4() && a.As4()[0] == 127 }

// acceptLoop accepts on ln for svc until the listener closes, admitting each connection and
// handing it to serve in its own goroutine.
func (l *Lab) acceptLoop(ln net.Listener, svc service, serve func(net.Conn, *entry)) {
	defer l.wg.Done()
	held := make(chan struct{}, l.cfg.holdLimit) // used by blackholes only
	for {
		if svc == svcBlackhole {
			select {
			case held <- struct{}{}:
			case <-l.ctx.Done():
				return
			}
		}
		c, err := ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or a similar passing failure: back off briefly and retry,
			// as net/http does.
			l.log.Warn("lab accept", "service", svc, "err", err)
			select {
			case <-time.After(10 * time.Millisecond):
			case <-l.ctx.Done():
				return
			}
			if svc == svcBlackhole {
				<-held
			}
			continue
		}
		e := l.admit(c, svc)
		if e == nil || !l.track(c) {
			_ = c.Close()
			if svc == svcBlackhole {
				<-held
			}
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer l.untrack(c)
			if svc == svcBlackhole {
				defer func() { <-held }()
			}
			serve(c, e)
		}()
	}
}

// serveBlackhole reads and discards whatever the client sends, never answering, until the client
// closes or the lab stops.
func (l *Lab) serveBlackhole(c net.Conn, _ *entry) {
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

var _ io.Closer = (*boundSocket)(nil)
