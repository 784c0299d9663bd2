package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/proxy"
)

// TestOnlyLoopbackTargets: the lab must be useless as an open proxy. Every request for a
// non-loopback target is refused before any dial (dialHook fails the test if one happens).
func TestOnlyLoopbackTargets(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{HTTP: 1, SOCKS4: 1, SOCKS4A: 1, SOCKS5: 1})
	hp, s4, s4a, s5 := firstOf(t, l, KindHTTP).Proxy, firstOf(t, l, KindSOCKS4).Proxy, firstOf(t, l, KindSOCKS4A).Proxy, firstOf(t, l, KindSOCKS5).Proxy
	tests := []struct {
		name string
		addr string
		msg  []byte
		want []byte // prefix of the answer
	}{
		{"http absolute ip", hp.Addr(), []byte("GET http://192.0.2.1/ HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n"), []byte("HTTP/1.1 403")},
		{"http absolute name", hp.Addr(), []byte("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"), []byte("HTTP/1.1 403")},
		{"http connect ip", hp.Addr(), []byte("CONNECT 192.0.2.1:443 HTTP/1.1\r\nHost: 192.0.2.1:443\r\n\r\n"), []byte("HTTP/1.1 403")},
		{"http connect v6", hp.Addr(), []byte("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("HTTP/1.1 403")},
		{"http connect mapped", hp.Addr(), []byte("CONNECT [::ffff:192.0.2.1]:443 HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("HTTP/1.1 403")},
		{"http origin form", hp.Addr(), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("HTTP/1.1 400")},
		{"http garbage", hp.Addr(), []byte("\x05\x01\x00"), []byte("HTTP/1.1 400")},
		{"socks4 ip", s4.Addr(), []byte("\x04\x01\x00\x50\xc0\x00\x02\x01u\x00"), []byte("\x00\x5b")},
		{"socks4 refuses 4a", s4.Addr(), []byte("\x04\x01\x00\x50\x00\x00\x00\x01u\x00localhost\x00"), []byte("\x00\x5b")},
		{"socks4a name", s4a.Addr(), []byte("\x04\x01\x00\x50\x00\x00\x00\x01u\x00example.com\x00"), []byte("\x00\x5b")},
		{"socks4 bind", s4.Addr(), []byte("\x04\x02\x00\x50\x7f\x00\x00\x01u\x00"), []byte("\x00\x5b")},
		{"socks5 ip", s5.Addr(), []byte("\x05\x01\x00\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x50"), []byte("\x05\x00\x05\x02")},
		{"socks5 name", s5.Addr(), []byte("\x05\x01\x00\x05\x01\x00\x03\x0bexample.com\x00\x50"), []byte("\x05\x00\x05\x02")},
		{"socks5 udp", s5.Addr(), []byte("\x05\x01\x00\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x50"), []byte("\x05\x00\x05\x07")},
		{"socks5 bad atyp", s5.Addr(), []byte("\x05\x01\x00\x05\x01\x00\x09"), []byte("\x05\x00\x05\x08")},
		{"socks5 to socks4", s4.Addr(), []byte("\x05\x01\x00"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := rawExchange(t, tt.addr, tt.msg)
			if !bytes.HasPrefix(got, tt.want) || (tt.want == nil && len(got) != 0) {
				t.Fatalf("answer %q, want prefix %q", got, tt.want)
			}
		})
	}
}

func TestResolveTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // "" for an error
	}{
		{"127.0.0.2:80", "127.0.0.2:80"},
		{"127.255.0.9:1", "127.255.0.9:1"},
		{"localhost:8080", "127.0.0.1:8080"},
		{"LocalHost.:8080", "127.0.0.1:8080"},
		{"judge.localhost:1", "127.0.0.1:1"},
		{"[::1]:443", "[::1]:443"},
		{"[::ffff:127.0.0.5]:443", "127.0.0.5:443"},
		{"10.0.0.1:80", ""},
		{"0.0.0.0:80", ""},
		{"[::]:80", ""},
		{"example.com:80", ""},
		{"localhost.example.com:80", ""},
		{"[fe80::1%lo]:80", ""},
		{"127.0.0.1:0", ""},
		{"127.0.0.1:65536", ""},
		{"127.0.0.1", ""},
	}
	for _, tt := range tests {
		got, err := resolveTarget(tt.in, nil)
		if tt.want == "" {
			if err == nil {
				t.Errorf("resolveTarget(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("resolveTarget(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

// TestResolveTargetHosts: a name in Config.Hosts reaches its loopback address, without case or
// trailing dot; other names still fail.
func TestResolveTargetHosts(t *testing.T) {
	t.Parallel()
	hosts := map[string]netip.Addr{"ipinfo.io": netip.MustParseAddr("127.0.0.2")}
	tests := []struct{ in, want string }{
		{"ipinfo.io:443", "127.0.0.2:443"},
		{"IPinfo.IO.:80", "127.0.0.2:80"},
		{"localhost:1", "127.0.0.1:1"},
		{"example.com:443", ""},
		{"ipinfo.io.example:443", ""},
		{"sub.ipinfo.io:443", ""},
		{"ipinfo.io:0", ""},
		{"127.0.0.9:1", "127.0.0.9:1"},
	}
	for _, tt := range tests {
		got, err := resolveTarget(tt.in, hosts)
		if tt.want == "" {
			if err == nil {
				t.Errorf("resolveTarget(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("resolveTarget(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

// TestHostsValidate: Validate refuses a name mapped outside loopback, an empty name and a name
// with a port.
func TestHostsValidate(t *testing.T) {
	t.Parallel()
	for _, bad := range []map[string]netip.Addr{
		{"ipinfo.io": netip.MustParseAddr("10.0.0.1")}, {"": netip.MustParseAddr("127.0.0.1")}, {"a:b": netip.MustParseAddr("127.0.0.1")},
	} {
		if err := (Config{Hosts: bad}).Validate(); err == nil {
			t.Errorf("Validate accepted Hosts %v", bad)
		}
	}
}

// TestAdmitClosesStrangers: on the wildcard listeners, connections to 127.0.0.1, to an address
// with no proxy, or to a proxy of another kind are closed at once, unanswered.
func TestAdmitClosesStrangers(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{HTTP: 1, SOCKS5: 1, Blackhole: 1})
	hp, s5, bh := firstOf(t, l, KindHTTP).Proxy, firstOf(t, l, KindSOCKS5).Proxy, firstOf(t, l, KindBlackhole).Proxy
	port := func(p proxy.Proxy) string { return strconv.Itoa(int(p.Port)) }
	for _, addr := range []string{
		net.JoinHostPort("127.0.0.1", port(hp)),
		net.JoinHostPort("127.0.0.2", port(hp)),
		net.JoinHostPort("127.0.200.1", port(hp)),
		net.JoinHostPort(s5.Host, port(hp)),
		net.JoinHostPort(hp.Host, port(s5)),
		net.JoinHostPort("127.0.0.1", port(bh)),
		net.JoinHostPort(hp.Host, port(bh)),
	} {
		got := rawExchange(t, addr, []byte("GET http://127.0.0.2/ HTTP/1.1\r\nHost: x\r\n\r\n"))
		if len(got) != 0 {
			t.Errorf("%s answered %q, want a closed connection", addr, got)
		}
	}
}

// TestTunnelHalfClose: a client that half-closes its side of a tunnel still gets the whole
// answer, through CONNECT and through SOCKS5.
func TestTunnelHalfClose(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{HTTP: 1, SOCKS5: 1})
	// A loopback server that reads everything, then answers with the count and closes.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(c)
			fmt.Fprintf(c, "got %d bytes", len(b))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	target := ln.Addr().String()
	payload := bytes.Repeat([]byte("x"), 100_000)
	for _, kind := range []string{KindHTTP, KindSOCKS5} {
		p := firstOf(t, l, kind).Proxy
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		if kind == KindHTTP {
			fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("connect: %v %v", resp, err)
			}
		} else if err := socks5Handshake(c, br, "", "", target, false); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(br)
		c.Close()
		if err != nil || string(got) != "got 100000 bytes" {
			t.Fatalf("%s: answer %q, %v", kind, got, err)
		}
	}
}

// TestStopLeavesNothing stops a lab in the middle of everything (open tunnels, held blackhole
// connections, slow requests, half-done handshakes) and checks that Stop returns promptly, the
// clients see their connections end, and no file descriptor or goroutine is left.
func TestStopLeavesNothing(t *testing.T) {
	// Not parallel: it counts the process's file descriptors.
	before := countFDs(t)
	l, err := Start(context.Background(), Config{HTTP: 1, HTTPS: 1, SOCKS5: 1, Blackhole: 1, Slow: 1, SlowDelay: time.Hour, Refused: 1})
	if err != nil {
		t.Fatal(err)
	}
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dial := func(p proxy.Proxy, msg string) net.Conn {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		return c
	}
	judgeHost := l.JudgeURL()[len("http://") : len(l.JudgeURL())-1]
	tun := dial(firstOf(t, l, KindHTTP).Proxy, "CONNECT "+judgeHost+" HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(tun)
	if resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("connect: %v", err)
	}
	s5 := dial(firstOf(t, l, KindSOCKS5).Proxy, "\x05\x01\x00")
	dial(firstOf(t, l, KindBlackhole).Proxy, "hello")
	dial(firstOf(t, l, KindSlow).Proxy, "GET http://"+judgeHost+"/ HTTP/1.1\r\nHost: x\r\n\r\n")
	dial(firstOf(t, l, KindHTTPS).Proxy, "") // TLS handshake never started
	var sel [2]byte
	if _, err := io.ReadFull(s5, sel[:]); err != nil {
		t.Fatal(err)
	}
	// Wait until the lab holds the blackhole and slow connections too.
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		n := len(l.closers)
		l.mu.Unlock()
		if n >= 5+2+5+1 { // 4 listeners and the refused socket, 2 judge servers, 5 client conns, 1 upstream
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lab tracks %d closers, want at least 13", n)
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	start := time.Now()
	stopLab(t, l)
	stopLab(t, l) // idempotent
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Stop took %v", took)
	}
	for i, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, c); isTimeout(err) {
			t.Fatalf("client %d: connection still open after Stop", i)
		}
		c.Close()
	}
	clients = nil
	if after := countFDs(t); after != before {
		t.Fatalf("fds before %d, after Stop %d", before, after)
	}
	// The addresses are free again: the ports can be bound.
	for _, tr := range l.Truth() {
		ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(tr.Proxy.Port))))
		if err != nil {
			t.Fatalf("port of %s still taken: %v", tr.Kind, err)
		}
		ln.Close()
	}
}

// TestStartFailsCleanly: a Dir that cannot be written fails Start and leaves nothing running.
func TestStartFailsCleanly(t *testing.T) {
	before := countFDs(t)
	blocker := t.TempDir() + "/file"
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Config{HTTP: 1, Dir: blocker + "/sub"})
	if err == nil {
		t.Fatal("Start with a bad dir succeeded")
	}
	if after := countFDs(t); after != before {
		t.Fatalf("fds before %d, after a failed Start %d", before, after)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(ctx, Config{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a canceled context: %v", err)
	}
}

// TestBlackholeHoldLimit: past its limit the blackhole service stops accepting; connections wait
// in the kernel backlog (the client still sees a silent peer) and are taken as held ones close.
func TestBlackholeHoldLimit(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{Blackhole: 2, holdLimit: 3})
	tracked := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.closers)
	}
	waitTracked := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for tracked() != want {
			if time.Now().After(deadline) {
				t.Fatalf("lab tracks %d, want %d", tracked(), want)
			}
			time.Sleep(time.Millisecond) // polling with a deadline
		}
	}
	base := tracked() // listener, judge servers
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 5 {
		c, err := net.Dial("tcp", l.Candidates()[i%2].Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i == 2 {
			waitTracked(base + 3)
		}
	}
	// The two over the limit are connected (in the backlog) but not accepted.
	timer := time.NewTimer(100 * time.Millisecond)
	<-timer.C
	if n := tracked(); n != base+3 {
		t.Fatalf("lab holds %d blackhole connections, limit 3", n-base)
	}
	for _, c := range conns[:3] {
		c.Close()
	}
	waitTracked(base + 2) // the held ones released, the two from the backlog taken
	for _, c := range conns[3:] {
		c.Close()
	}
	waitTracked(base)
}

// TestListenersBoundToLoopbackDevice: every wildcard listener only receives packets that arrived
// on lo, so the farm is unreachable from the network (root or Linux >= 5.7 can set this).
func TestListenersBoundToLoopbackDevice(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	l.mu.Lock()
	var lns []*net.TCPListener
	for c := range l.closers {
		if ln, ok := c.(*net.TCPListener); ok {
			lns = append(lns, ln)
		}
	}
	l.mu.Unlock()
	if len(lns) != 6 { // http, https, socks4, socks4a, socks5, blackhole
		t.Fatalf("%d wildcard listeners, want 6", len(lns))
	}
	for _, ln := range lns {
		if got := ln.Addr().String(); !strings.HasPrefix(got, "0.0.0.0:") {
			t.Fatalf("listener on %s, want the IPv4 wildcard", got)
		}
		rc, err := ln.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var dev string
		var gerr error
		if err := rc.Control(func(fd uintptr) {
			dev, gerr = unix.GetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
		}); err != nil || gerr != nil {
			t.Fatalf("getsockopt: %v %v", err, gerr)
		}
		if dev != "lo" {
			t.Fatalf("listener %s bound to device %q, want lo", ln.Addr(), dev)
		}
	}
}
