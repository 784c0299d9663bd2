package check

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// maxBody is the most of a judge page a check reads; a longer page is a mismatch.
const maxBody = 64 << 10

// buffers is the scratch memory of one check, pooled between checks.
type buffers struct {
	br   *bufio.Reader
	out  []byte       // requests written to the proxy
	body bytes.Buffer // the judge page
}

func newBuffers() *buffers {
	return &buffers{br: bufio.NewReaderSize(nil, 2048), out: make([]byte, 0, 1024)}
}

// attempt is one check of one proxy in one protocol: everything in it belongs to this check.
type attempt struct {
	c        *Checker
	ctx      context.Context
	p        proxy.Proxy
	deadline time.Time
	start    time.Time
	connect  time.Duration // TCP connect plus proxy handshake
	token    string
	b        *buffers
}

func (c *Checker) newAttempt(ctx context.Context, p proxy.Proxy, deadline time.Time) *attempt {
	return &attempt{c: c, ctx: ctx, p: p, deadline: deadline, start: time.Now(), b: c.bufs.Get().(*buffers)}
}

// release returns the buffers to the pool. The attempt must not be used afterwards.
func (a *attempt) release() {
	a.b.br.Reset(nil)
	if a.b.body.Cap() > maxBody+512 {
		a.b.body = bytes.Buffer{}
	}
	a.b.body.Reset()
	a.c.bufs.Put(a.b)
	a.b = nil
}

// dial connects to host:port with this check's own dialer and deadline. An IP literal (the
// usual proxy) is dialled without going through the resolver.
func (a *attempt) dial(host string, port uint16) (net.Conn, error) {
	d := net.Dialer{Deadline: a.deadline}
	var conn net.Conn
	var err error
	if ip, perr := netip.ParseAddr(host); perr == nil {
		var tc *net.TCPConn
		if tc, err = d.DialTCP(a.ctx, "tcp", netip.AddrPort{}, netip.AddrPortFrom(ip, port)); err == nil {
			conn = tc
		}
	} else {
		conn, err = d.DialContext(a.ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	if err != nil {
		return nil, ioFailure(a.ctx, "connect", err)
	}
	// Close with a reset rather than FIN: a checker opens tens of thousands of short
	// connections a minute, and each normal close would leave a TIME_WAIT socket on our side for
	// 60 s, holding an ephemeral port and a slot of the kernel's TIME_WAIT table (131,072 on our
	// machines; this project's benchmarks filled it). A check has read all it needs before it
	// closes, so nothing is lost.
	if tc, ok := conn.(*net.TCPConn); ok {
		if err := tc.SetLinger(0); err != nil {
			conn.Close()
			return nil, ioFailure(a.ctx, "set linger", err)
		}
	}
	if err := conn.SetDeadline(a.deadline); err != nil {
		conn.Close()
		return nil, ioFailure(a.ctx, "set deadline", err)
	}
	return conn, nil
}

// run connects to the proxy, establishes the route to the judge in the proxy's protocol and
// fetches the judge page through it.
func (a *attempt) run() (verdict, error) {
	conn, err := a.dial(a.p.Host, a.p.Port)
	if err != nil {
		return verdict{}, err
	}
	defer conn.Close()
	// Cancellation sets a deadline in the past, which interrupts whatever I/O is in progress;
	// the deadline set by dial covers the timeout.
	stop := context.AfterFunc(a.ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var c net.Conn = conn
	a.b.br.Reset(c)
	j := a.c.judge
	switch a.p.Scheme {
	case proxy.HTTPS:
		tc := tls.Client(conn, a.proxyTLSConfig())
		if err := tc.HandshakeContext(a.ctx); err != nil {
			var rhe tls.RecordHeaderError
			if class := ioClass(a.ctx, err); class != Timeout && class != Canceled &&
				(isClosed(err) || errors.As(err, &rhe)) {
				// The peer hung up on a ClientHello or answered in plain text: not a TLS proxy.
				return verdict{}, fail(BadResponse, "tls handshake with proxy: not a TLS server: %w", err)
			}
			return verdict{}, tlsFailure(a.ctx, "tls handshake with proxy", err)
		}
		c = tc
		a.b.br.Reset(c)
		fallthrough
	case proxy.HTTP:
		auth := a.basicAuth()
		if !j.tls {
			a.connect = time.Since(a.start)
			return a.fetchJudge(c, true, auth)
		}
		if err := a.httpConnect(c, auth); err != nil {
			return verdict{}, err
		}
	case proxy.SOCKS5:
		if err := socks5(a.ctx, c, a.b.br, a.p, j, a.b.out[:0]); err != nil {
			return verdict{}, err
		}
	case proxy.SOCKS4, proxy.SOCKS4A:
		var ip netip.Addr // the judge's IPv4 address, for SOCKS4 (SOCKS4a sends a name)
		if p := a.c.judgeIP.Load(); p != nil {
			ip = *p
		}
		if err := socks4(a.ctx, c, a.b.br, a.p, j, ip, a.b.out[:0]); err != nil {
			return verdict{}, err
		}
	default:
		return verdict{}, fail(BadResponse, "unknown proxy scheme %q", a.p.Scheme)
	}
	a.connect = time.Since(a.start)
	if a.b.br.Buffered() > 0 {
		return verdict{}, fail(BadResponse, "proxy sent %d unexpected bytes after its handshake", a.b.br.Buffered())
	}
	if j.tls {
		tc := tls.Client(c, a.c.tls)
		if err := tc.HandshakeContext(a.ctx); err != nil {
			return verdict{}, tlsFailure(a.ctx, "tls handshake with judge through proxy", err)
		}
		c = tc
		a.b.br.Reset(c)
	}
	return a.fetchJudge(c, false, "")
}

// direct fetches the judge page without a proxy.
func (a *attempt) direct() (verdict, error) {
	conn, err := a.dial(a.c.judge.host, a.c.judge.port)
	if err != nil {
		return verdict{}, err
	}
	defer conn.Close()
	// A deadline in the past interrupts I/O in progress.
	stop := context.AfterFunc(a.ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var c net.Conn = conn
	if a.c.judge.tls {
		tc := tls.Client(conn, a.c.tls)
		if err := tc.HandshakeContext(a.ctx); err != nil {
			return verdict{}, tlsFailure(a.ctx, "tls handshake with judge", err)
		}
		c = tc
	}
	a.b.br.Reset(c)
	return a.fetchJudge(c, false, "")
}

// proxyTLSConfig is the TLS configuration for an https:// proxy: verified against the same roots
// as the judge, with the proxy's host as the server name.
func (a *attempt) proxyTLSConfig() *tls.Config {
	return &tls.Config{ServerName: a.p.Host, RootCAs: a.c.opts.RootCAs, MinVersion: tls.VersionTLS12}
}

// basicAuth returns the Proxy-Authorization value for p's credentials, or "".
func (a *attempt) basicAuth() string {
	if a.p.User == "" && a.p.Password == "" {
		return ""
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(a.p.User+":"+a.p.Password))
}

// httpConnect asks an HTTP proxy for a tunnel to the judge.
func (a *attempt) httpConnect(c net.Conn, auth string) error {
	j := a.c.judge
	b := append(a.b.out[:0], "CONNECT "...)
	b = append(b, j.addr...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, j.addr...)
	b = append(b, "\r\nUser-Agent: "+userAgent+"\r\n"...)
	if auth != "" {
		b = append(b, "Proxy-Authorization: "...)
		b = append(b, auth...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	if _, err := c.Write(b); err != nil {
		return ioFailure(a.ctx, "write CONNECT", err)
	}
	resp, err := http.ReadResponse(a.b.br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return readFailure(a.ctx, "read CONNECT response", err)
	}
	// A 2xx reply to CONNECT has no body; a refusal's body is not needed.
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusProxyAuthRequired:
		return fail(AuthNeeded, "CONNECT: proxy answered %s", resp.Status)
	default:
		return fail(Unreachable, "CONNECT: proxy answered %s", resp.Status)
	}
}

// fetchJudge writes the judge request on c and reads and verifies the answer.
func (a *attempt) fetchJudge(c net.Conn, absolute bool, auth string) (verdict, error) {
	token := rand.Text()
	a.b.out = a.c.judge.appendRequest(a.b.out[:0], absolute, token, auth)
	if _, err := c.Write(a.b.out); err != nil {
		return verdict{}, ioFailure(a.ctx, "write judge request", err)
	}
	resp, err := http.ReadResponse(a.b.br, nil)
	if err != nil {
		return verdict{}, readFailure(a.ctx, "read judge response", err)
	}
	defer resp.Body.Close()
	j := a.c.judge
	if resp.StatusCode != j.status {
		switch resp.StatusCode {
		case http.StatusProxyAuthRequired:
			return verdict{}, fail(AuthNeeded, "proxy answered %s", resp.Status)
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return verdict{}, fail(Unreachable, "proxy answered %s", resp.Status)
		}
		return verdict{}, fail(Mismatch, "judge answered %s, want %d", resp.Status, j.status)
	}
	if _, err := a.b.body.ReadFrom(io.LimitReader(resp.Body, maxBody+1)); err != nil {
		return verdict{}, readFailure(a.ctx, "read judge page", err)
	}
	if a.b.body.Len() > maxBody {
		return verdict{}, fail(Mismatch, "judge page longer than %d bytes", maxBody)
	}
	v, err := j.verify(a.b.body.Bytes(), token, a.realIP())
	if err != nil {
		return verdict{}, err
	}
	return v, nil
}

func (a *attempt) realIP() netip.Addr {
	if p := a.c.realIP.Load(); p != nil {
		return *p
	}
	return netip.Addr{}
}

// readFailure classes an error reading an HTTP response: timeouts and cancellation as such, a
// TLS record that fails its MAC (the proxy changed bytes in the tunnel) as Mismatch, a connection
// closed before a response or a malformed one as BadResponse.
func readFailure(ctx context.Context, what string, err error) error {
	if class := ioClass(ctx, err); class == Timeout || class == Canceled {
		return ioFailure(ctx, what, err)
	}
	if isTampering(err) {
		return fail(Mismatch, "%s: the tunnel altered the judge's TLS stream: %w", what, err)
	}
	if isClosed(err) {
		return fail(BadResponse, "%s: connection closed before a complete response: %w", what, err)
	}
	return fail(BadResponse, "%s: %w", what, err)
}
