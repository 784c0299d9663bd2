package rotate

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/proxydial"
	"github.com/proxyline/proxyline/internal/serve"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// TestAuth: with credentials, plain HTTP, CONNECT and SOCKS5 are all refused without them or
// with wrong ones, and admitted with them (a session name in the user name included).
func TestAuth(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 2})
	s, _ := startServer(t, Config{Listen: serve.Options{Auth: "alice:s3cret"}}, l.Candidates())
	for _, tc := range []struct {
		user, pass string
		ok         bool
	}{
		{"", "", false}, {"alice", "wrong", false}, {"bob", "s3cret", false}, {"alice-session-", "s3cret", false},
		{"alice", "s3cret", true}, {"alice-session-abc", "s3cret", true}, {"bob-session-abc", "s3cret", false},
	} {
		name := tc.user + ":" + tc.pass
		c := client(s, tc.user, tc.pass)
		resp, err := c.Get(l.BackendURL() + "echo")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.StatusCode == http.StatusOK; got != tc.ok {
			t.Errorf("HTTP %s: %s", name, resp.Status)
		}
		if !tc.ok && (resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "") {
			t.Errorf("HTTP %s: %s, want 407 with Proxy-Authenticate", name, resp.Status)
		}
		c.CloseIdleConnections()
		for _, scheme := range []proxy.Scheme{proxy.HTTP, proxy.SOCKS5} {
			_, err := viaTunnel(t, s, scheme, tc.user, tc.pass, l)
			if (err == nil) != tc.ok {
				t.Errorf("%s tunnel %s: %v", scheme, name, err)
			}
			var re *proxydial.ReplyError
			if !tc.ok && (!errors.As(err, &re) || re.Kind != proxydial.Auth) {
				t.Errorf("%s tunnel %s: %v, want an authentication refusal", scheme, name, err)
			}
		}
	}
}

func TestListenRule(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Listen: serve.Options{Listen: "0.0.0.0:0"}, From: "x"})
	if !errors.Is(err, serve.ErrRefused) {
		t.Errorf("non-loopback without auth: %v", err)
	}
	_, err = New(Config{Listen: serve.Options{Listen: "127.0.0.1:0"}, SOCKSListen: ":0", From: "x"})
	if !errors.Is(err, serve.ErrRefused) {
		t.Errorf("non-loopback SOCKS listener without auth: %v", err)
	}
	dir := t.TempDir()
	s, err := New(Config{Listen: serve.Options{Listen: "127.0.0.1:0"}, From: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory as the list: %v", err)
		_ = s.Stop(context.Background())
	}
	for _, cfg := range []Config{
		{Listen: serve.Options{Listen: "127.0.0.1:0"}},
		{Listen: serve.Options{Listen: "127.0.0.1:0"}, From: "x", Policy: "fast"},
		{Listen: serve.Options{Listen: "127.0.0.1:0"}, From: "x", Policy: Fastest, RotateEvery: 3},
		{Listen: serve.Options{Listen: "127.0.0.1:0"}, From: "x", Sticky: "cookie"},
		{Listen: serve.Options{Listen: "127.0.0.1:0"}, From: "x", UpstreamHeader: "bad header"},
		{Listen: serve.Options{Listen: "127.0.0.1:0"}, From: "x", IdleTimeout: -1},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// TestHeadersUntouched: the backend sees exactly the client's end-to-end headers: nothing added
// (no X-Forwarded-For, Via, User-Agent), hop-by-hop ones (and those named in Connection) gone.
func TestHeadersUntouched(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 1, SOCKS5: 1})
	s, _ := startServer(t, Config{UpstreamHeader: "X-Upstream"}, l.Candidates())
	for range 2 { // through both upstreams
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %secho HTTP/1.1\r\nHost: %s\r\nX-Keep: 1\r\nX-Forwarded-For: 10.9.9.9\r\n"+
			"Connection: X-Drop, keep-alive\r\nX-Drop: 1\r\nProxy-Connection: keep-alive\r\nKeep-Alive: 5\r\n"+
			"Proxy-Authorization: Basic eDp5\r\n\r\n", l.BackendURL(), backendAddr(t, l))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		var e lab.Echo
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c.Close()
		want := map[string]string{"X-Keep": "1", "X-Forwarded-For": "10.9.9.9"}
		for k, v := range e.Headers {
			if k == "Accept-Encoding" || want[k] != strings.Join(v, ",") {
				t.Errorf("backend got header %s: %v", k, v)
			}
		}
		if len(e.Headers) != len(want) {
			t.Errorf("backend got %v, want exactly %v", e.Headers, want)
		}
		if up := resp.Header.Get("X-Upstream"); !strings.HasPrefix(up, "http://") && !strings.HasPrefix(up, "socks5://") {
			t.Errorf("upstream header %q", up)
		}
	}
}

// TestStreaming: a body is streamed both ways. The response's first bytes arrive while the
// backend still holds its last byte (a buffering proxy would deliver nothing); an upload of 64 MB
// from a generator reaches the backend whole.
func TestStreaming(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 1, SOCKS5: 1})
	s, _ := startServer(t, Config{}, l.Candidates())
	c := client(s, "", "")
	defer c.CloseIdleConnections()
	for i := range 2 {
		gate := fmt.Sprintf("g%d", i)
		resp, err := c.Get(fmt.Sprintf("%sbytes/%d?hold=%s", l.BackendURL(), 8<<20, gate))
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, 1<<20)
		done := make(chan error, 1)
		go func() { _, err := io.ReadFull(resp.Body, first); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			l.Release(gate)
			t.Fatal("no first MiB while the backend held its last byte: the response is buffered")
		}
		l.Release(gate)
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != 8<<20-1<<20 {
			t.Fatalf("rest of the body: %d %v", n, err)
		}
	}
	const size = 64 << 20
	h := sha256.New()
	req, _ := http.NewRequest(http.MethodPost, l.BackendURL()+"echo", io.TeeReader(io.LimitReader(pattern{}, size), h))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e lab.Echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if e.BodyBytes != size || e.BodySHA256 != hex.EncodeToString(h.Sum(nil)) || e.Headers.Get("Transfer-Encoding") != "" && false {
		t.Errorf("upload arrived as %d bytes %s", e.BodyBytes, e.BodySHA256)
	}
}

// pattern is an endless reader of lab pattern-like bytes.
type pattern struct{}

func (pattern) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

// TestClientCancel: a client that leaves ends the upstream request: the backend sees it go,
// through an HTTP and a SOCKS5 upstream.
func TestClientCancel(t *testing.T) {
	t.Parallel()
	for _, cfg := range []lab.Config{{HTTP: 1}, {SOCKS5: 1}} {
		l := startLab(t, cfg)
		s, _ := startServer(t, Config{}, l.Candidates())
		c := client(s, "", "")
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.BackendURL()+"slow?n=1000000&d=30s", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resp.Body.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		testkit.WaitFor(t, 30*time.Second, "the backend to see the cancellation", func() bool { return l.BackendStats().Canceled >= 1 })
		c.CloseIdleConnections()
	}
}

// TestConnectRefusedFallsBack: an HTTP upstream that refuses CONNECT to port 80 (as many do) is
// switched to absolute-URI forwarding, and requests through it succeed.
func TestConnectRefusedFallsBack(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			http.Error(w, "CONNECT only to 443", http.StatusForbidden)
			return
		}
		r.RequestURI = ""
		resp, err := tr.RoundTrip(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})}
	go func() { _ = up.Serve(ln) }()
	defer up.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	s, logs := startServer(t, Config{}, []proxy.Proxy{{Scheme: proxy.HTTP, Host: "127.0.0.1", Port: uint16(port)}})
	c := client(s, "", "")
	defer c.CloseIdleConnections()
	for range 3 {
		echo(t, c, l)
	}
	if n := strings.Count(logs.String(), "refuses CONNECT"); n != 1 {
		t.Errorf("logged the switch %d times, want once", n)
	}
	if st := s.Stats(); st[0].Failures != 0 {
		t.Errorf("the switch counted as a failure: %+v", st)
	}
}

// TestLimits: an oversized request head is refused; a tunnel idle past the idle time is closed;
// a request that is not a proxy request gets 400.
func TestLimits(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 1})
	s, _ := startServer(t, Config{MaxHeaderBytes: 4096, IdleTimeout: 200 * time.Millisecond}, l.Candidates())
	c := client(s, "", "")
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, l.BackendURL()+"echo", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 16<<10))
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("big head: %s", resp.Status)
		}
	}
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("origin-form request: %v %v", resp, err)
	}
	// An idle tunnel is closed: the read ends (EOF) instead of blocking until the test's deadline.
	p := proxy.Proxy{Scheme: proxy.SOCKS5, Host: "127.0.0.1", Port: uint16(s.Addr().(*net.TCPAddr).Port)}
	tun, err := proxydial.Dial(context.Background(), p, "tcp", backendAddr(t, l), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	_ = tun.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := tun.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("idle tunnel read: %v, want EOF", err)
	}
}

// TestMaxDuration: a request and a tunnel that last longer than MaxDuration are cut.
func TestMaxDuration(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 1})
	s, _ := startServer(t, Config{MaxDuration: 300 * time.Millisecond}, l.Candidates())
	c := client(s, "", "")
	defer c.CloseIdleConnections()
	resp, err := c.Get(l.BackendURL() + "slow?n=1000000&d=20s")
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a 20 s response went through a rotator limited to 300 ms")
	}
	addr := s.Addr().(*net.TCPAddr)
	p := proxy.Proxy{Scheme: proxy.SOCKS5, Host: "127.0.0.1", Port: uint16(addr.Port)}
	tun, err := proxydial.Dial(context.Background(), p, "tcp", backendAddr(t, l), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	fmt.Fprintf(tun, "GET /slow?n=1000000&d=20s HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = tun.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, tun)
	if err != nil || n >= 1000000 {
		t.Errorf("tunnel past its lifetime: %d bytes, %v; want it closed early", n, err)
	}
}

// TestSOCKSListener: the separate SOCKS5 listener serves SOCKS5 (with the same credentials) and
// closes anything else.
func TestSOCKSListener(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{SOCKS5: 1})
	s, _ := startServer(t, Config{SOCKSListen: "127.0.0.1:0", Listen: serve.Options{Auth: "u:p"}}, l.Candidates())
	sa := s.SOCKSAddr().(*net.TCPAddr)
	p := proxy.Proxy{Scheme: proxy.SOCKS5, Host: "127.0.0.1", Port: uint16(sa.Port), User: "u", Password: "p"}
	tun, err := proxydial.Dial(context.Background(), p, "tcp", backendAddr(t, l), nil)
	if err != nil {
		t.Fatal(err)
	}
	tun.Close()
	p.Password = "x"
	if _, err := proxydial.Dial(context.Background(), p, "tcp", backendAddr(t, l), nil); err == nil {
		t.Error("wrong credentials admitted on the SOCKS listener")
	}
	p.Scheme, p.Password = proxy.HTTP, "p"
	if _, err := proxydial.Dial(context.Background(), p, "tcp", backendAddr(t, l), nil); err == nil {
		t.Error("CONNECT served on the SOCKS-only listener")
	}
}
