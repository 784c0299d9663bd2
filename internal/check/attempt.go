package check

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/proxydial"
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

// dial connects to host:port with this check's own dialer and deadline.
func (a *attempt) dial(host string, port uint16) (net.Conn, error) {
	// No TCP keep-alive: a check lasts seconds, and turning it on costs four setsockopt calls
	// per connection. Dialed by address string rather than with Dialer.DialTCP, whose zero
	// local address still binds the socket (to 0.0.0.0:0): one more system call, and a port
	// taken for every destination instead of one chosen by connect. An IP literal (the usual
	// proxy) never reaches the resolver either way.
	d := net.Dialer{Deadline: a.deadline, KeepAlive: -1}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	conn, err := d.DialContext(a.ctx, "tcp", addr)
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
		tc, err := a.proxyTLS(conn)
		if err != nil {
			return verdict{}, err
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
		tc, err := a.judgeHandshake(c, "tls handshake with judge through proxy")
		if err != nil {
			return verdict{}, err
		}
		c = tc
		a.b.br.Reset(c)
	}
	return a.fetchJudge(c, false, "")
}

// proxyTLS does the TLS handshake with an HTTPS proxy. A peer that hangs up on the ClientHello
// or answers in plain text is not a TLS proxy (BadResponse), not a TLS failure.
func (a *attempt) proxyTLS(conn net.Conn) (*tls.Conn, error) {
	tc := tls.Client(conn, a.c.proxyTLSConfig(a.p.Host))
	if err := tc.HandshakeContext(a.ctx); err != nil {
		var rhe tls.RecordHeaderError
		if class := ioClass(a.ctx, err); class != Timeout && class != Canceled &&
			(isClosed(err) || errors.As(err, &rhe)) {
			return nil, fail(BadResponse, "tls handshake with proxy: not a TLS server: %w", err)
		}
		return nil, tlsFailure(a.ctx, "tls handshake with proxy", err)
	}
	return tc, nil
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
		tc, err := a.judgeHandshake(conn, "tls handshake with judge")
		if err != nil {
			return verdict{}, err
		}
		c = tc
	}
	a.b.br.Reset(c)
	return a.fetchJudge(c, false, "")
}

// judgeHandshake runs the TLS handshake with the judge over c (see judgeTLS) and counts
// it as full or resumed.
func (a *attempt) judgeHandshake(c net.Conn, what string) (*tls.Conn, error) {
	jt := a.c.tls.Load()
	tc := tls.Client(c, jt.config)
	if err := tc.HandshakeContext(a.ctx); err != nil {
		if isRemoteAlert(err) {
			jt.sessions.rejected()
		}
		return nil, tlsFailure(a.ctx, what, err)
	}
	jt.sessions.succeeded()
	if tc.ConnectionState().DidResume {
		a.c.tlsResumed.Add(1)
	} else {
		a.c.tlsFull.Add(1)
	}
	return tc, nil
}

// basicAuth returns the Proxy-Authorization value for p's credentials, or "".
func (a *attempt) basicAuth() string { return proxydial.BasicAuth(a.p.User, a.p.Password) }

// httpConnect asks an HTTP proxy for a tunnel to the judge: the request and the reading of the
// reply are internal/proxydial's (shared with the rotator); this classes the failures, a write
// or a read that failed as I/O, a refusal by its kind.
func (a *attempt) httpConnect(c net.Conn, auth string) error {
	a.b.out = proxydial.AppendConnect(a.b.out[:0], a.c.judge.addr, auth)
	if _, err := c.Write(a.b.out); err != nil {
		return ioFailure(a.ctx, "write CONNECT", err)
	}
	err := proxydial.ReadConnectReply(a.b.br)
	var re *proxydial.ReplyError
	if err == nil || errors.As(err, &re) {
		return handshakeFailure(a.ctx, err)
	}
	return readFailure(a.ctx, "read CONNECT response", errors.Unwrap(err))
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
			return verdict{}, fail(Unreachable, "proxy answered %s%s", resp.Status, reasonOf(resp.Body))
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

// reasonOf is ": " and the first line of an error page a proxy sent with its 502, 503 or 504
// (most proxies say why: a dial timeout, a refused target), at most maxReason printable ASCII
// bytes of it (the page is the proxy's, untrusted: nothing else of it reaches a log); "" when
// the page says nothing readable.
func reasonOf(body io.Reader) string {
	const maxReason = 160
	var b [maxReason]byte
	n, _ := io.ReadFull(body, b[:])
	line := b[:n]
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	for i, c := range line {
		if c < 0x20 || c > 0x7e {
			line[i] = '?'
		}
	}
	if s := strings.TrimSpace(string(line)); s != "" {
		return ": " + s
	}
	return ""
}
