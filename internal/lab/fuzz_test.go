package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/proxy"
)

func FuzzReadSOCKS4(f *testing.F) {
	f.Add([]byte("\x04\x01\x00\x50\x7f\x00\x00\x02user\x00"))
	f.Add([]byte("\x04\x01\x00\x50\x00\x00\x00\x01\x00localhost\x00"))
	f.Add([]byte("\x04\x02\x00\x50\x00\x00\x00\x01u\x00\x00"))
	f.Add([]byte("\x05\x01\x00"))
	f.Add([]byte("\x04\x01\x00\x50\x7f\x00\x00\x02" + strings.Repeat("u", 300) + "\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := readSOCKS4(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if len(data) < 9 || data[0] != socks4Version {
			t.Fatalf("accepted %q", data)
		}
		if len(req.user) > maxSOCKSField || len(req.domain) > maxSOCKSField {
			t.Fatalf("field too long: %d, %d", len(req.user), len(req.domain))
		}
		is4a := req.ip[0] == 0 && req.ip[1] == 0 && req.ip[2] == 0 && req.ip[3] != 0
		if is4a != (req.domain != "") {
			t.Fatalf("ip %v with domain %q", req.ip, req.domain)
		}
	})
}

func FuzzReadSOCKS5(f *testing.F) {
	f.Add([]byte("\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x02\x00\x50"))
	f.Add([]byte("\x05\x02\x00\x02\x01\x03lab\x04pw-1\x05\x01\x00\x03\x09localhost\x1f\x90"))
	f.Add([]byte("\x05\x01\x00\x05\x01\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x50"))
	f.Add([]byte("\x05\x00"))
	f.Add([]byte("\x05\x01\x00\x05\x01\x00\x03\x00\x00\x50"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		methods, err := readSOCKS5Greeting(r)
		if err != nil {
			return
		}
		if len(methods) == 0 || int(data[1]) != len(methods) {
			t.Fatalf("methods %v from %q", methods, data)
		}
		if bytes.IndexByte(methods, socks5UserPass) >= 0 {
			if _, _, err := readSOCKS5Auth(r); err != nil {
				return
			}
		}
		req, err := readSOCKS5Request(r)
		if err != nil {
			return
		}
		switch req.atyp {
		case atypIPv4, atypIPv6:
			if _, err := netip.ParseAddr(req.host); err != nil {
				t.Fatalf("address %q: %v", req.host, err)
			}
		case atypDomain:
			if req.host == "" || len(req.host) > 255 {
				t.Fatalf("domain %q", req.host)
			}
		default:
			t.Fatalf("accepted address type %#x", req.atyp)
		}
	})
}

func FuzzResolveTarget(f *testing.F) {
	for _, s := range []string{"127.0.0.2:80", "localhost:1", "[::1]:2", "example.com:80", "10.0.0.1:80", "[::ffff:127.0.0.1]:9", "a.localhost.:3", "IPINFO.io.:443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := resolveTarget(s, map[string]netip.Addr{"ipinfo.io": netip.AddrFrom4([4]byte{127, 0, 0, 2})})
		if err != nil {
			return
		}
		if !ap.Addr().IsLoopback() || ap.Port() == 0 {
			t.Fatalf("resolveTarget(%q) = %v: not a loopback target", s, ap)
		}
	})
}

// socketPair returns two connected stream sockets that can half-close.
func socketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

// fuzzLab is a Lab without listeners whose proxies "dial" an in-memory judge.
func fuzzLab(t *testing.T) (*Lab, *sync.WaitGroup) {
	l := &Lab{cfg: Config{SlowDelay: time.Millisecond}.withDefaults(), log: slog.New(slog.DiscardHandler), closers: map[closer]struct{}{}}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	_ = l.life.Start(func() error { return nil }) // built by hand, stopped by Stop
	var wg sync.WaitGroup
	l.dialHook = func(netip.AddrPort) (net.Conn, error) {
		a, b := socketPair(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer b.Close()
			_ = b.SetDeadline(time.Now().Add(5 * time.Second))
			req, err := http.ReadRequest(bufio.NewReader(b))
			if err != nil {
				return
			}
			body := `{"judge":"proxyline","token":"` + req.URL.Query().Get("t") + `"}`
			io.WriteString(b, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
		}()
		return a, nil
	}
	return l, &wg
}

// exchange serves data on one end of a socket pair with serve and returns what it answered.
func exchange(t *testing.T, serve func(net.Conn), data []byte) []byte {
	client, server := socketPair(t)
	defer client.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		serve(server)
	}()
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_, _ = client.Write(data) // fails once the server hangs up: fine
		_ = client.(*net.UnixConn).CloseWrite()
	}()
	out, err := io.ReadAll(client)
	<-wrote
	// A server that hangs up with input unread resets the connection: that is an answer too.
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read answer to %q: %v", data, err)
	}
	client.Close()
	<-done
	return out
}

func FuzzHTTPProxyConn(f *testing.F) {
	f.Add(uint8(0), []byte("GET http://127.0.0.2:80/?t=a HTTP/1.1\r\nHost: 127.0.0.2\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\n\r\n"))
	f.Add(uint8(1), []byte("GET http://127.0.0.2/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic bGFiOnB3LTE=\r\n\r\n"))
	f.Add(uint8(2), []byte("CONNECT 127.0.0.2:80 HTTP/1.1\r\nHost: x\r\n\r\nGET /?t=b HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n"))
	f.Add(uint8(3), []byte("CONNECT localhost:443 HTTP/1.1\r\n\r\n\x16\x03\x01\x00\x05hello"))
	f.Add(uint8(4), []byte("POST http://127.0.0.2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add(uint8(5), []byte("GET http://example.com/ HTTP/1.1\r\n\r\n"))
	f.Add(uint8(6), []byte("GET / HTTP/1.0\r\n\r\n"))
	f.Add(uint8(0), []byte("\x05\x01\x00"))
	kinds := []string{KindHTTP, KindHTTPAuth, KindTransparent, KindAnonymous, KindSlow, KindLiar, KindAlter}
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		l, wg := fuzzLab(t)
		defer wg.Wait()
		defer stopLab(t, l)
		kind := kinds[int(k)%len(kinds)]
		e := &entry{kind: kind, svc: svcHTTP, addr: netip.MustParseAddr("127.0.0.9"), scheme: proxy.HTTP}
		if kind == KindHTTPAuth {
			e.user, e.pass = "lab", "pw-1"
		}
		out := exchange(t, func(c net.Conn) { l.serveHTTP(c, e) }, data)
		if len(out) > 0 && !bytes.HasPrefix(out, []byte("HTTP/1.1 ")) {
			t.Fatalf("answer %q does not start with a status line", out)
		}
	})
}

func FuzzSOCKSConn(f *testing.F) {
	f.Add(uint8(0), []byte("\x04\x01\x00\x50\x7f\x00\x00\x02u\x00GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add(uint8(1), []byte("\x04\x01\x00\x50\x00\x00\x00\x01\x00localhost\x00GET / HTTP/1.1\r\n\r\n"))
	f.Add(uint8(2), []byte("\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x02\x00\x50GET / HTTP/1.1\r\n\r\n"))
	f.Add(uint8(3), []byte("\x05\x01\x02\x01\x03lab\x04pw-1\x05\x01\x00\x03\x09localhost\x00\x50"))
	kinds := []struct {
		kind string
		svc  service
	}{{KindSOCKS4, svcSOCKS4}, {KindSOCKS4A, svcSOCKS4A}, {KindSOCKS5, svcSOCKS5}, {KindSOCKS5Auth, svcSOCKS5}}
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		l, wg := fuzzLab(t)
		defer wg.Wait()
		defer stopLab(t, l)
		kd := kinds[int(k)%len(kinds)]
		e := &entry{kind: kd.kind, svc: kd.svc, addr: netip.MustParseAddr("127.0.0.9")}
		if kd.kind == KindSOCKS5Auth {
			e.user, e.pass = "lab", "pw-1"
		}
		out := exchange(t, func(c net.Conn) { l.serveSOCKS(c, e) }, data)
		if len(out) == 0 {
			return
		}
		if want := byte(socks5Version); kd.svc == svcSOCKS5 && out[0] != want {
			t.Fatalf("socks5 answer %q", out)
		}
		if kd.svc != svcSOCKS5 && (out[0] != 0 || len(out) < 8) {
			t.Fatalf("socks4 answer %q", out)
		}
	})
}

// TestHeadLimit: an endless request head gets 431, not unbounded memory.
func TestHeadLimit(t *testing.T) {
	t.Parallel()
	l, wg := fuzzLab(t)
	defer wg.Wait()
	defer stopLab(t, l)
	e := &entry{kind: KindHTTP, svc: svcHTTP, addr: netip.MustParseAddr("127.0.0.9"), scheme: proxy.HTTP}
	head := "GET http://127.0.0.2/ HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n"
	out := exchange(t, func(c net.Conn) { l.serveHTTP(c, e) }, []byte(head))
	if !bytes.HasPrefix(out, []byte("HTTP/1.1 431")) {
		t.Fatalf("answer %.40q, want 431", out)
	}
}
