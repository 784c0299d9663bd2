package check

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// testJudge is never dialed by these tests: the fake proxies answer for it.
const testJudge = "http://127.0.0.2:8080/judge"

func newTestChecker(t *testing.T, o Options) *Checker {
	t.Helper()
	if o.Judge == "" {
		o.Judge = testJudge
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.RealIP == "" {
		o.RealIP = "127.0.0.1"
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func proxyAt(t *testing.T, s proxy.Scheme, addr string) proxy.Proxy {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return proxy.Proxy{Scheme: s, Host: host, Port: uint16(n)}
}

// socks5Serve runs a SOCKS5 server exchange: greeting answered with method, then (for 0x02) the
// auth status, then the CONNECT reply code; on success it serves the judge page.
func socks5Serve(method, authStatus, rep byte, wantUser string) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		methods := make([]byte, h[1])
		if _, err := io.ReadFull(br, methods); err != nil {
			return
		}
		c.Write([]byte{5, method})
		switch method {
		case 0xFF:
			return
		case 0x02:
			var v [2]byte
			io.ReadFull(br, v[:])
			user := make([]byte, v[1])
			io.ReadFull(br, user)
			pl, _ := br.ReadByte()
			pass := make([]byte, pl)
			io.ReadFull(br, pass)
			st := authStatus
			if string(user) != wantUser {
				st = 1
			}
			c.Write([]byte{1, st})
			if st != 0 {
				return
			}
		}
		var req [4]byte
		if _, err := io.ReadFull(br, req[:]); err != nil {
			return
		}
		switch req[3] {
		case 1:
			io.ReadFull(br, make([]byte, 4+2))
		case 3:
			l, _ := br.ReadByte()
			io.ReadFull(br, make([]byte, int(l)+2))
		case 4:
			io.ReadFull(br, make([]byte, 16+2))
		}
		c.Write([]byte{5, rep, 0, 1, 127, 0, 0, 1, 0, 80})
		if rep == 0 {
			judgePage(c, br, "127.0.0.9", nil, nil)
		}
	}
}

func socks4Serve(code byte) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		var h [8]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		if _, err := br.ReadString(0); err != nil { // user id
			return
		}
		if h[4] == 0 && h[5] == 0 && h[6] == 0 && h[7] != 0 { // 4a: host name follows
			if _, err := br.ReadString(0); err != nil {
				return
			}
		}
		var r [8]byte
		r[1] = code
		binary.BigEndian.PutUint16(r[2:], 80)
		c.Write(r[:])
		if code == 0x5A {
			judgePage(c, br, "127.0.0.9", nil, nil)
		}
	}
}

func TestCheckClasses(t *testing.T) {
	t.Parallel()
	httpReply := func(status int) func(net.Conn, *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			writeResponse(c, status, "no")
		}
	}
	raw := func(reply string) func(net.Conn, *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			br.ReadString('\n')
			io.WriteString(c, reply)
		}
	}
	rawNow := func(reply string) func(net.Conn, *bufio.Reader) { // answers before reading
		return func(c net.Conn, br *bufio.Reader) { io.WriteString(c, reply) }
	}
	hang := func(c net.Conn, br *bufio.Reader) { io.Copy(io.Discard, br) }
	tests := []struct {
		name      string
		scheme    proxy.Scheme
		user      string
		script    func(net.Conn, *bufio.Reader)
		want      Class
		anonymity Anonymity
		wantErr   string
	}{
		{name: "http elite", scheme: proxy.HTTP, want: Alive, anonymity: Elite,
			script: func(c net.Conn, br *bufio.Reader) { judgePage(c, br, "127.0.0.9", nil, nil) }},
		{name: "http anonymous", scheme: proxy.HTTP, want: Alive, anonymity: Anonymous,
			script: func(c net.Conn, br *bufio.Reader) {
				judgePage(c, br, "127.0.0.9", http.Header{"Via": {"1.1 squid"}, "X-Forwarded-For": {"127.0.0.9"}}, nil)
			}},
		{name: "http transparent by header", scheme: proxy.HTTP, want: Alive, anonymity: Transparent,
			script: func(c net.Conn, br *bufio.Reader) {
				judgePage(c, br, "127.0.0.9", http.Header{"X-Forwarded-For": {"10.0.0.1, 127.0.0.1"}}, nil)
			}},
		{name: "http transparent by address", scheme: proxy.HTTP, want: Alive, anonymity: Transparent,
			script: func(c net.Conn, br *bufio.Reader) { judgePage(c, br, "127.0.0.1", nil, nil) }},
		{name: "near miss address is not ours", scheme: proxy.HTTP, want: Alive, anonymity: Anonymous,
			script: func(c net.Conn, br *bufio.Reader) {
				judgePage(c, br, "127.0.0.9", http.Header{"X-Real-Ip": {"127.0.0.10"}}, nil)
			}},
		{name: "http liar token", scheme: proxy.HTTP, want: Mismatch, wantErr: "token",
			script: func(c net.Conn, br *bufio.Reader) {
				judgePage(c, br, "127.0.0.9", nil, func(string) string { return "forged" })
			}},
		{name: "http liar page", scheme: proxy.HTTP, want: Mismatch, script: httpReply(200)},
		{name: "http 407", scheme: proxy.HTTP, want: AuthNeeded, script: httpReply(407)},
		{name: "http 502", scheme: proxy.HTTP, want: Unreachable, script: httpReply(502)},
		{name: "http 504", scheme: proxy.HTTP, want: Unreachable, script: httpReply(504)},
		{name: "http 502 says why", scheme: proxy.HTTP, want: Unreachable, wantErr: "502 Bad Gateway: dial judge: i/o timeout ?? end",
			script: raw("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 44\r\n\r\n dial judge: i/o timeout \x1b\xff end\r\nsecond line")},
		{name: "http 403", scheme: proxy.HTTP, want: Mismatch, script: httpReply(403)},
		{name: "http garbage", scheme: proxy.HTTP, want: BadResponse, script: raw("SSH-2.0-OpenSSH\r\n")},
		{name: "http closes", scheme: proxy.HTTP, want: BadResponse, script: raw("")},
		{name: "http hangs", scheme: proxy.HTTP, want: Timeout, script: hang},
		{name: "socks5", scheme: proxy.SOCKS5, want: Alive, anonymity: Elite, script: socks5Serve(0, 0, 0, "")},
		{name: "socks5 auth", scheme: proxy.SOCKS5, user: "u", want: Alive, anonymity: Elite, script: socks5Serve(2, 0, 0, "u")},
		{name: "socks5 wrong user", scheme: proxy.SOCKS5, user: "x", want: AuthNeeded, script: socks5Serve(2, 0, 0, "u")},
		{name: "socks5 wants auth", scheme: proxy.SOCKS5, want: AuthNeeded, script: socks5Serve(2, 0, 0, "u")},
		{name: "socks5 no method", scheme: proxy.SOCKS5, want: AuthNeeded, script: socks5Serve(0xFF, 0, 0, "")},
		{name: "socks5 general failure", scheme: proxy.SOCKS5, want: Unreachable, script: socks5Serve(0, 0, 1, "")},
		{name: "socks5 host unreachable", scheme: proxy.SOCKS5, want: Unreachable, script: socks5Serve(0, 0, 4, "")},
		{name: "socks5 command unsupported", scheme: proxy.SOCKS5, want: BadResponse, script: socks5Serve(0, 0, 7, "")},
		{name: "socks5 to http proxy", scheme: proxy.SOCKS5, want: BadResponse, script: rawNow("HTTP/1.1 400 Bad Request\r\n\r\n")},
		{name: "socks4", scheme: proxy.SOCKS4, want: Alive, anonymity: Elite, script: socks4Serve(0x5A)},
		{name: "socks4a", scheme: proxy.SOCKS4A, want: Alive, anonymity: Elite, script: socks4Serve(0x5A)},
		{name: "socks4 rejected", scheme: proxy.SOCKS4, want: Unreachable, script: socks4Serve(0x5B)},
		{name: "socks4 identd", scheme: proxy.SOCKS4, want: AuthNeeded, script: socks4Serve(0x5C)},
		{name: "probe http", scheme: proxy.Unknown, want: Alive, anonymity: Elite,
			script: func(c net.Conn, br *bufio.Reader) { judgePage(c, br, "127.0.0.9", nil, nil) }},
		{name: "probe socks5", scheme: proxy.Unknown, want: Alive, anonymity: Elite, script: probeServe(5)},
		{name: "probe socks4", scheme: proxy.Unknown, want: Alive, anonymity: Elite, script: probeServe(4)},
		{name: "probe garbage", scheme: proxy.Unknown, want: BadResponse, script: rawNow("")},
		{name: "probe hangs", scheme: proxy.Unknown, want: Timeout, script: hang},
	}
	// Only the cases that hang need the timeout to strike; every other case gets one that a busy
	// machine never reaches (at load 47 under -race a loopback dial took over 2 s).
	c := newTestChecker(t, Options{Timeout: 60 * time.Second})
	short := newTestChecker(t, Options{Timeout: 2 * time.Second})
	wantScheme := map[string]proxy.Scheme{"probe http": proxy.HTTP, "probe socks5": proxy.SOCKS5, "probe socks4": proxy.SOCKS4}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := proxyAt(t, tt.scheme, fakeProxy(t, tt.script))
			p.User = tt.user
			cc := c
			if tt.want == Timeout {
				cc = short
			}
			r := cc.Check(context.Background(), p)
			if r.Class != tt.want || r.Anonymity != tt.anonymity {
				t.Fatalf("Check = %s/%q (%s), want %s/%q", r.Class, r.Anonymity, r.Err, tt.want, tt.anonymity)
			}
			if tt.wantErr != "" && !strings.Contains(r.Err, tt.wantErr) {
				t.Errorf("Err = %q, want it to mention %q", r.Err, tt.wantErr)
			}
			if r.OK() && r.ExitIP != "127.0.0.9" && tt.anonymity != Transparent {
				t.Errorf("ExitIP = %q, want 127.0.0.9", r.ExitIP)
			}
			if s, ok := wantScheme[tt.name]; ok && r.Proxy.Scheme != s {
				t.Errorf("probed scheme %q, want %q", r.Proxy.Scheme, s)
			}
			if tt.scheme == proxy.Unknown && !r.OK() && r.Proxy.Scheme != proxy.Unknown {
				t.Errorf("failed probe reports scheme %q, want unknown", r.Proxy.Scheme)
			}
			if r.Total <= 0 || r.CheckedAt.IsZero() || (r.OK() && r.Connect <= 0) {
				t.Errorf("timings not set: %+v", r)
			}
		})
	}
}

// TestCheckClassesTLSJudge covers the CONNECT path: what an HTTP proxy answers to CONNECT for an
// https judge, and a tunnel that is not one.
func TestCheckClassesTLSJudge(t *testing.T) {
	t.Parallel()
	connectReply := func(reply string) func(net.Conn, *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			req, err := http.ReadRequest(br)
			if err != nil || req.Method != http.MethodConnect || req.Host != "127.0.0.2:8443" {
				return
			}
			io.WriteString(c, reply)
			io.Copy(io.Discard, br) // then wait for the client
		}
	}
	tests := []struct {
		name   string
		scheme proxy.Scheme
		script func(net.Conn, *bufio.Reader)
		want   Class
	}{
		{"connect 407", proxy.HTTP, connectReply("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"), AuthNeeded},
		{"connect 403", proxy.HTTP, connectReply("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"), Unreachable},
		{"connect 502", proxy.HTTP, connectReply("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"), Unreachable},
		{"connect 200 then a page", proxy.HTTP, connectReply("HTTP/1.1 200 OK\r\n\r\n{\"judge\":\"proxyline\"}"), BadResponse},
		{"connect 200 then hang up", proxy.HTTP, func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err == nil {
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
			}
		}, TLSError},
		{"connect 200 then silence", proxy.HTTP, connectReply("HTTP/1.1 200 Connection established\r\n\r\n"), Timeout},
		{"https proxy that is not TLS", proxy.HTTPS, connectReply(""), BadResponse},
	}
	c := newTestChecker(t, Options{Judge: "https://127.0.0.2:8443/", Timeout: 2 * time.Second})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := c.Check(context.Background(), proxyAt(t, tt.scheme, fakeProxy(t, tt.script)))
			if r.Class != tt.want {
				t.Fatalf("Check = %s (%s), want %s", r.Class, r.Err, tt.want)
			}
		})
	}
}

// probeServe answers only the SOCKS version v and closes on anything else, like real servers.
func probeServe(v byte) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		b, err := br.Peek(1)
		if err != nil || b[0] != v {
			return
		}
		if v == 5 {
			socks5Serve(0, 0, 0, "")(c, br)
		} else {
			socks4Serve(0x5A)(c, br)
		}
	}
}
