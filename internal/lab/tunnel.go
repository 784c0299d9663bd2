package lab

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// dialTimeout bounds a proxy's connection to its target: as long as the wait for a request's
// head, since the targets are the lab's own loopback servers, which only a machine too busy to
// accept in time makes slow (5 s gave a 502 to 2 of 600 concurrent checks at load 40), and a
// lab proxy must not fail where the internet's proxy would have waited.
const dialTimeout = headTimeout

// errNotLoopback is returned for a target outside loopback: the lab is never an open proxy.
var errNotLoopback = errors.New("target is not a loopback address")

// resolveTarget parses host:port and accepts it only if the host is a loopback IP literal, a
// loopback name (localhost or *.localhost, RFC 6761) or a name in hosts (Config.Hosts, whose
// addresses are all loopback). No DNS is ever consulted.
func resolveTarget(hostport string, hosts map[string]netip.Addr) (netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("target %q: %w", hostport, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("target %q: bad port", hostport)
	}
	return resolveHost(host, uint16(port), hosts)
}

func resolveHost(host string, port uint16, hosts map[string]netip.Addr) (netip.AddrPort, error) {
	name := hostKey(host)
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port), nil
	}
	if ip, ok := hosts[name]; ok {
		return netip.AddrPortFrom(ip, port), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("target %q: %w", host, errNotLoopback)
	}
	ip = ip.Unmap()
	if !ip.IsLoopback() {
		return netip.AddrPort{}, fmt.Errorf("target %s: %w", ip, errNotLoopback)
	}
	return netip.AddrPortFrom(ip, port), nil
}

// hostKey is a host name as Config.Hosts keys it: lower case, without a trailing dot.
func hostKey(host string) string { return strings.TrimSuffix(strings.ToLower(host), ".") }

// dialOut connects proxy e to target, from e's own address so that the target sees e as the
// exit IP. The connection is tracked: Stop closes it.
func (l *Lab) dialOut(e *entry, target netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	var err error
	if l.dialHook != nil {
		c, err = l.dialHook(target)
	} else {
		d := net.Dialer{Timeout: dialTimeout}
		if target.Addr().Is4() {
			d.LocalAddr = &net.TCPAddr{IP: e.addr.AsSlice()}
			// Let connect, not bind, choose the source port: the port then only has to be
			// unique per destination, so a busy proxy address never runs out of ports to
			// connections lingering in TIME_WAIT. Without it (old kernels) dialing still works.
			d.Control = func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) {
					_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
				})
			}
		}
		c, err = d.DialContext(l.ctx, "tcp", target.String())
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", target, e.addr, err)
	}
	if !l.track(c) {
		return nil, fmt.Errorf("dial %s: lab stopped", target)
	}
	return c, nil
}

// closeWriter is a connection that can half-close (TCP and TLS connections can).
type closeWriter interface{ CloseWrite() error }

// tunnel copies both ways between the client (reading from clientR, which may hold bytes already
// buffered from client) and up, until both directions end. A direction that ends with EOF
// half-closes its destination, so the other direction can finish; one that fails closes both.
// mutate, if not nil, may change each chunk going from up to the client.
func (l *Lab) tunnel(client net.Conn, clientR io.Reader, up net.Conn, mutate func([]byte)) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			_ = client.Close()
			_ = up.Close()
		})
	}
	done := make(chan struct{})
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(done)
		pipe(up, clientR, nil, closeBoth)
	}()
	pipe(client, up, mutate, closeBoth)
	<-done
	closeBoth()
}

// pipe copies src to dst; on EOF it half-closes dst, on error it calls fail.
func pipe(dst net.Conn, src io.Reader, mutate func([]byte), fail func()) {
	buf := make([]byte, 16<<10)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if mutate != nil {
				mutate(buf[:n])
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				fail()
				return
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				fail()
				return
			}
			if cw, ok := dst.(closeWriter); ok && cw.CloseWrite() == nil {
				return
			}
			fail()
			return
		}
	}
}

// flipFirst returns a mutate function that flips one bit of the last byte of the first chunk.
func flipFirst() func([]byte) {
	done := false
	return func(b []byte) {
		if !done && len(b) > 0 {
			b[len(b)-1] ^= 0x01
			done = true
		}
	}
}
