package lab

// The HTTP proxy is written on net/http's own parsers (http.ReadRequest, http.ReadResponse,
// Request.Write, Response.Write) rather than on http.Server and httputil.ReverseProxy: the lab
// needs per-connection behaviour chosen by the local address, byte-level misbehaviour (lying,
// altering, stalling) and exact control of every goroutine and socket for Stop and the leak
// tests, which a Server's hidden goroutines and a Transport's connection pool would blur.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/judge"
)

// maxHead bounds the bytes read for one request head, as net/http's server does
// (http.DefaultMaxHeaderBytes plus slack): http.ReadRequest itself has no limit.
const maxHead = 1<<20 + 4096

// headLimiter reads from r until n bytes have been read, then reports EOF. serveHTTP sets n
// before each request head and lifts it after.
type headLimiter struct {
	r io.Reader
	n int64
}

func (h *headLimiter) Read(p []byte) (int, error) {
	if h.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > h.n {
		p = p[:h.n]
	}
	n, err := h.r.Read(p)
	h.n -= int64(n)
	return n, err
}

// maxAlterBody bounds the body an altering proxy reads to change it.
const maxAlterBody = 1 << 20

// viaValue is what transparent and anonymous proxies add as Via.
const viaValue = "1.1 proxyline-lab"

// stripHop removes the hop-by-hop headers from h, including those named in Connection (RFC 9110
// section 7.6.1; the same list as net/http/httputil.ReverseProxy).
func stripHop(h http.Header) {
	hopHeaders := [...]string{
		"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade",
	}
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// serveHTTP serves one connection to an HTTP (or, over TLS, HTTPS) proxy.
func (l *Lab) serveHTTP(c net.Conn, e *entry) {
	if e.svc == svcHTTPS {
		tc := tls.Server(c, l.ca.serverConfig())
		ctx, cancel := context.WithTimeout(l.ctx, headTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			l.log.Debug("lab https handshake", "proxy", e.addr, "err", err)
			return
		}
		c = tc
	}
	lim := &headLimiter{r: c}
	br := bufio.NewReaderSize(lim, 4<<10)
	for {
		lim.n = maxHead
		_ = c.SetReadDeadline(time.Now().Add(headTimeout))
		// A request starts with a method, a token of letters: answer anything else (a SOCKS
		// greeting from a probe, say) at once instead of waiting for a line that never comes.
		if first, err := br.Peek(1); err == nil && !isTokenStart(first[0]) {
			writeStatus(c, http.StatusBadRequest, "lab proxy: not an HTTP request", nil)
			return
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			switch {
			case lim.n <= 0:
				writeStatus(c, http.StatusRequestHeaderFieldsTooLarge, "lab proxy: request head too large", nil)
			case !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
				writeStatus(c, http.StatusBadRequest, "lab proxy: bad request: "+err.Error(), nil)
			}
			return
		}
		lim.n = math.MaxInt64 // the body and tunnels are not limited
		_ = c.SetReadDeadline(time.Time{})
		if !l.handleRequest(c, br, req, e) {
			return
		}
	}
}

func isTokenStart(b byte) bool { return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' }

// handleRequest answers one request; it reports whether the connection may carry another.
func (l *Lab) handleRequest(c net.Conn, br *bufio.Reader, req *http.Request, e *entry) bool {
	if e.needsAuth() && !proxyAuthOK(req.Header.Get("Proxy-Authorization"), e.user, e.pass) {
		drained := drainSmall(req.Body)
		writeStatus(c, http.StatusProxyAuthRequired, "lab proxy: credentials required",
			http.Header{"Proxy-Authenticate": {`Basic realm="proxyline lab"`}})
		return drained && !req.Close
	}
	if e.kind == KindSlow && (!l.held() || !l.wait(l.cfg.SlowDelay)) {
		return false
	}
	if req.Method == http.MethodConnect {
		l.connect(c, br, req, e)
		return false
	}
	if !req.URL.IsAbs() || req.URL.Scheme != "http" || req.URL.Host == "" {
		writeStatus(c, http.StatusBadRequest, "lab proxy: want an absolute http:// URI or CONNECT", nil)
		return false
	}
	if e.kind == KindLiar {
		writeForged(c, req, e)
		return false
	}
	target, err := resolveHost(req.URL.Hostname(), portOr80(req.URL), l.hosts)
	if err != nil {
		writeStatus(c, http.StatusForbidden, "lab proxy: "+err.Error(), nil)
		return false
	}
	up, err := l.dialOut(e, target)
	if err != nil {
		writeStatus(c, http.StatusBadGateway, "lab proxy: "+err.Error(), nil)
		return false
	}
	defer l.untrack(up)
	l.forward(c, req, up, e)
	return false
}

// connect serves CONNECT: elite proxies tunnel raw bytes; transparent, anonymous and altering
// proxies look at the first byte, and for plain HTTP inside the tunnel act on the request as
// they would on an absolute-URI one (for TLS they cannot: they tunnel, and an alterer flips a
// byte, which breaks the handshake). Liars answer the tunnelled request themselves.
func (l *Lab) connect(c net.Conn, br *bufio.Reader, req *http.Request, e *entry) {
	target, err := resolveTarget(req.URL.Host, l.hosts)
	if err != nil {
		writeStatus(c, http.StatusForbidden, "lab proxy: "+err.Error(), nil)
		return
	}
	var up net.Conn
	if e.kind != KindLiar {
		if up, err = l.dialOut(e, target); err != nil {
			writeStatus(c, http.StatusBadGateway, "lab proxy: "+err.Error(), nil)
			return
		}
		defer l.untrack(up)
	}
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	switch e.kind {
	case KindHTTP, KindHTTPAuth, KindHTTPS, KindSlow, KindBare:
		l.tunnel(c, br, up, nil)
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(headTimeout))
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	if first[0] == 0x16 { // a TLS handshake record
		_ = c.SetReadDeadline(time.Time{})
		switch e.kind {
		case KindAlter:
			l.tunnel(c, br, up, flipFirst())
		case KindLiar: // cannot forge a TLS judge: hang up
		default:
			l.tunnel(c, br, up, nil)
		}
		return
	}
	inner, err := http.ReadRequest(bufio.NewReader(io.LimitReader(br, maxHead)))
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	inner.URL.Scheme, inner.URL.Host = "http", req.URL.Host
	if e.kind == KindLiar {
		writeForged(c, inner, e)
		return
	}
	l.forward(c, inner, up, e)
}

// forward sends req to up as an origin-form request and relays the response to the client,
// then the connection closes. Elite proxies add nothing; transparent and anonymous ones add Via
// and X-Forwarded-For; alterers change the token in the body.
func (l *Lab) forward(c net.Conn, req *http.Request, up net.Conn, e *entry) {
	h := req.Header.Clone()
	stripHop(h)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // keep Request.Write from adding Go's own User-Agent
	}
	switch e.kind {
	case KindTransparent:
		if ip, ok := remoteIP(c); ok {
			h.Set("X-Forwarded-For", ip.String())
		}
		h.Set("Via", viaValue)
	case KindAnonymous:
		h.Set("X-Forwarded-For", e.addr.String())
		h.Set("Via", viaValue)
	}
	out := &http.Request{
		Method:           req.Method,
		URL:              &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery},
		Proto:            "HTTP/1.1",
		ProtoMajor:       1,
		ProtoMinor:       1,
		Header:           h,
		Body:             req.Body,
		ContentLength:    req.ContentLength,
		TransferEncoding: req.TransferEncoding,
		Host:             req.Host,
	}
	if out.Host == "" {
		out.Host = req.URL.Host
	}
	if out.ContentLength == 0 {
		out.Body = nil
	}
	_ = up.SetDeadline(time.Now().Add(headTimeout))
	if err := out.Write(up); err != nil {
		writeStatus(c, http.StatusBadGateway, "lab proxy: send request: "+err.Error(), nil)
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(up), out)
	if err != nil {
		writeStatus(c, http.StatusBadGateway, "lab proxy: read response: "+err.Error(), nil)
		return
	}
	defer resp.Body.Close()
	_ = up.SetDeadline(time.Time{})
	stripHop(resp.Header)
	if e.kind == KindAlter {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxAlterBody))
		if err != nil {
			writeStatus(c, http.StatusBadGateway, "lab proxy: read body: "+err.Error(), nil)
			return
		}
		body = alterBody(body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.TransferEncoding = nil
	}
	resp.Close = true
	bw := bufio.NewWriterSize(c, 4<<10)
	if err := resp.Write(bw); err == nil {
		_ = bw.Flush() // the client hung up: nothing to do
	}
}

// alterBody changes a judge page's token to "altered:<token>", or, if b is no judge page, flips
// one bit in its middle.
func alterBody(b []byte) []byte {
	const key = `"token":"`
	if i := bytes.Index(b, []byte(key)); i >= 0 {
		j := i + len(key)
		return append(b[:j:j], append([]byte("altered:"), b[j:]...)...)
	}
	if len(b) > 0 {
		b[len(b)/2] ^= 0x01
	}
	return b
}

// writeForged answers req with a judge page the judge never wrote: the right shape, the liar as
// remote address, but a token that is not the one asked for.
func writeForged(c net.Conn, req *http.Request, e *entry) {
	page := judge.Response{
		Judge:      judge.Name,
		Token:      "forged",
		RemoteIP:   e.addr.String(),
		RemoteAddr: netip.AddrPortFrom(e.addr, 40000).String(),
		Method:     req.Method,
		Host:       req.Host,
		URI:        req.URL.RequestURI(),
		Headers:    http.Header{"User-Agent": req.Header.Values("User-Agent")},
	}
	body, _ := json.Marshal(page) // a struct of strings and headers always encodes
	body = append(body, '\n')
	resp := &http.Response{
		StatusCode:    http.StatusOK,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Close:         true,
		Request:       req,
	}
	bw := bufio.NewWriterSize(c, 2<<10)
	if err := resp.Write(bw); err == nil {
		_ = bw.Flush()
	}
}

// writeStatus writes a short plain-text response that closes the connection unless extra says
// otherwise. Errors are ignored: the client is gone.
func writeStatus(c net.Conn, code int, msg string, extra http.Header) {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	for k, vs := range extra {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if code != http.StatusProxyAuthRequired {
		b.WriteString("Connection: close\r\n")
	}
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s\n", len(msg)+1, msg)
	_, _ = io.WriteString(c, b.String())
}

// proxyAuthOK reports whether a Proxy-Authorization header value carries user and pass.
func proxyAuthOK(header, user, pass string) bool {
	scheme, cred, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return false
	}
	u, p, ok := strings.Cut(string(raw), ":")
	return ok && u == user && p == pass
}

// drainSmall reads and discards a small request body, reporting whether it was read whole.
func drainSmall(body io.ReadCloser) bool {
	if body == nil || body == http.NoBody {
		return true
	}
	n, err := io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	return err == nil && n < 64<<10
}

// portOr80 returns u's port, or 80.
func portOr80(u *url.URL) uint16 {
	p := u.Port()
	if p == "" {
		return 80
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return 0
	}
	return uint16(n)
}

// wait waits d unless the lab stops first; it reports whether the full delay passed.
// ReleaseSlow lets the slow proxies answer the requests they hold, and those to come, after
// SlowDelay (Config.HoldSlow). It may be called more than once; without HoldSlow it does nothing.
func (l *Lab) ReleaseSlow() {
	if l.slowGate != nil {
		l.releaseSlow.Do(func() { close(l.slowGate) })
	}
}

// held waits until the slow proxies are released (Config.HoldSlow); false when the lab stops
// first.
func (l *Lab) held() bool {
	if l.slowGate == nil {
		return true
	}
	select {
	case <-l.slowGate:
		return true
	case <-l.ctx.Done():
		return false
	}
}

func (l *Lab) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.ctx.Done():
		return false
	}
}
