package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxyline/proxyline/internal/proxydial"
	"github.com/proxyline/proxyline/internal/secret"
)

// routeKey is the context key of a request's *route.
type routeKey struct{}

// ServeHTTP serves one inbound HTTP request: proxy authentication, then CONNECT or an
// absolute-URI request forwarded upstream.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handlers.Add(1)
	defer s.handlerDone()
	user, pass, given := proxyBasicAuth(r.Header)
	key, ok := s.in.admit(user, pass, given, addrString(r.RemoteAddr))
	if !ok {
		w.Header().Set("Proxy-Authenticate", `Basic realm="proxyline"`)
		http.Error(w, "proxyline: proxy authentication required", http.StatusProxyAuthRequired)
		return
	}
	rt := &route{session: key}
	if r.Method == http.MethodConnect {
		s.serveConnect(w, r, rt)
		return
	}
	if !r.URL.IsAbs() || r.URL.Scheme != "http" || r.URL.Host == "" {
		http.Error(w, "proxyline: this is a proxy: send absolute http:// URIs, or CONNECT for anything else",
			http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), routeKey{}, rt), s.cfg.MaxDuration)
	defer cancel()
	fw := &flushWriter{ResponseWriter: w, delay: s.headDelay}
	defer fw.finish()
	s.proxy.ServeHTTP(fw, r.WithContext(ctx))
}

// addrString is a net.Addr made of a string.
type addrString string

func (a addrString) Network() string { return "tcp" }
func (a addrString) String() string  { return string(a) }

// forwardingHeaders are the headers ReverseProxy's Rewrite mode takes out of the outbound
// request; the rotator passes the client's own ones on untouched and adds none.
func forwardingHeaders() [4]string {
	return [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}
}

// newReverseProxy builds the forwarder of plain HTTP requests: net/http/httputil's, with the
// rotator as its transport (selection, retries, health).
func (s *Server) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			hop := connectionHeaders(pr.In.Header)
			for _, h := range forwardingHeaders() {
				if v, ok := pr.In.Header[h]; ok && !hop[strings.ToLower(h)] {
					pr.Out.Header[h] = v
				}
			}
		},
		Transport: transport{s},
		// 0: ReverseProxy copies straight to the flushWriter, which sends every write at once
		// (streams stay streams) and a response's head with its first body bytes.
		FlushInterval: 0,
		BufferPool:    bufferPool{&s.buffers},
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ErrorHandler:  s.proxyError,
	}
}

// connectionHeaders returns the (lower-case) names listed in Connection: hop-by-hop too.
func connectionHeaders(h http.Header) map[string]bool {
	var m map[string]bool
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				if m == nil {
					m = map[string]bool{}
				}
				m[strings.ToLower(name)] = true
			}
		}
	}
	return m
}

// proxyError answers a request that could not be forwarded: 503 when there is no upstream to use,
// 504 when the request's time ran out, 502 otherwise; always with the reason.
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return // the client left: nobody to answer
	}
	code := statusOf(err)
	msg := secret.Redact(err.Error())
	s.log.Debug("request failed", "url", secret.Redact(r.URL.String()), "status", code, "err", msg)
	http.Error(w, "proxyline: "+msg, code)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, errNoUpstream):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// transport is the ReverseProxy's RoundTripper: it picks an upstream, sends the request through
// it, and on failure benches it and tries another when that is safe.
type transport struct{ s *Server }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	s := t.s
	rt, _ := req.Context().Value(routeKey{}).(*route)
	if rt == nil {
		rt = &route{}
	}
	for attempt := 0; ; attempt++ {
		u, err := s.pick(rt)
		if err != nil {
			return nil, err
		}
		resp, body, err := s.send(req, u)
		if err == nil {
			return resp, nil
		}
		if req.Context().Err() != nil {
			return nil, err
		}
		s.failed(u, err)
		rt.tried = append(rt.tried, u)
		if attempt >= s.cfg.Retries || !retryable(req, body, err) {
			return nil, err
		}
		s.log.Debug("retrying on another upstream", "failed", u.label, "err", secret.Redact(err.Error()))
	}
}

// send makes one attempt through u. The request body, if any, is lent through a countedBody
// so that a failed attempt can tell whether it consumed any of it.
func (s *Server) send(req *http.Request, u *upstream) (*http.Response, *countedBody, error) {
	out := req
	var body *countedBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &countedBody{r: req.Body, n: &u.bytesOut}
		out = new(http.Request)
		*out = *req
		out.Body = body
		// The transport asks for the body again when a kept-alive tunnel turned out closed before
		// anything was written: it may have it as long as no byte of it was read.
		out.GetBody = func() (io.ReadCloser, error) {
			if !body.untouched() {
				return nil, errors.New("request body already partly sent")
			}
			return body, nil
		}
	}
	u.requests.Add(1)
	start := time.Now()
	resp, err := u.transport(s).RoundTrip(out)
	if body != nil && err != nil {
		body.abandon()
	}
	if err != nil && u.connectRefused(err) && (body == nil || body.untouched()) {
		// The upstream will not tunnel to this port: forward to it instead, from now on.
		u.forwardOnly.Store(true)
		s.log.Info("upstream refuses CONNECT to origins; forwarding absolute-URI requests to it", "upstream", u.label,
			"err", secret.Redact(err.Error()))
		if body != nil {
			body = &countedBody{r: req.Body, n: &u.bytesOut}
			out.Body = body
		}
		resp, err = u.transport(s).RoundTrip(out)
	}
	s.observe(u, start, err)
	if err != nil {
		if body != nil {
			body.abandon()
		}
		return nil, body, err
	}
	u.succeeded(time.Since(start))
	if s.cfg.UpstreamHeader != "" {
		resp.Header.Set(s.cfg.UpstreamHeader, u.label)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols { // a 101's body is the raw connection
		resp.Body = &countingReadCloser{ReadCloser: resp.Body, n: &u.bytesIn}
	}
	if s.log.Enabled(req.Context(), slog.LevelDebug) {
		s.log.Debug("forwarded", "upstream", u.label, "method", req.Method, "status", resp.StatusCode)
	}
	return resp, body, nil
}

// retryable reports whether a failed attempt may be repeated through another upstream: after a
// dial or handshake error (nothing reached the target), or for an idempotent method whose body
// was not touched. No response byte has been sent to the client in either case: RoundTrip
// failed before a response head.
func retryable(req *http.Request, body *countedBody, err error) bool {
	if body != nil && !body.untouched() {
		return false
	}
	if dialFailure(err) {
		return true
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// dialFailure reports an error reaching or handshaking with the upstream itself: nothing of the
// request left the rotator for the target.
func dialFailure(err error) bool {
	var de *proxydial.Error
	if errors.As(err, &de) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "proxyconnect"
}

// failed records a failed attempt through u: the upstream is benched unless the failure is the
// target's (the upstream said it could not reach it).
func (s *Server) failed(u *upstream, err error) {
	if proxydial.TargetFault(err) {
		return
	}
	d := u.bench(time.Now().UnixNano(), s.cfg.BenchCooldown, s.cfg.BenchMax, err)
	msg := secret.Redact(err.Error())
	s.log.Warn("upstream benched", "upstream", u.label, "for", d, "err", msg)
	s.src.report(u, msg)
}

// countedBody lends a request body to one attempt: it counts the bytes read and, once the
// attempt is abandoned, refuses further reads (a transport may still read in the background
// after RoundTrip returned), so a retry knows whether the body is still whole.
type countedBody struct {
	r        io.Reader
	n        *atomic.Int64 // the upstream's bytesOut
	read     atomic.Int64
	inflight atomic.Int32
	dead     atomic.Bool
}

var errAbandoned = errors.New("request body: attempt abandoned")

func (b *countedBody) Read(p []byte) (int, error) {
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	if b.dead.Load() {
		return 0, errAbandoned
	}
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	b.n.Add(int64(n))
	return n, err
}

// Close does not close the client's body: the server does, and a retry may still need it.
func (b *countedBody) Close() error { return nil }

func (b *countedBody) abandon() { b.dead.Store(true) }

// untouched reports whether no byte was read, nor is being read. Call it after abandon.
func (b *countedBody) untouched() bool { return b.inflight.Load() == 0 && b.read.Load() == 0 }

// countingReadCloser counts the bytes of a response body.
type countingReadCloser struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// copyBufSize is the size of the copy buffers of response bodies and tunnels.
const copyBufSize = 32 << 10

// bufferPool lends ReverseProxy the server's copy buffers. They are pooled as array pointers,
// which a slice converts back to without allocating (a *[]byte would cost an allocation at
// every Put).
type bufferPool struct{ p *sync.Pool }

func (b bufferPool) Get() []byte { return b.p.Get().(*[copyBufSize]byte)[:] }

func (b bufferPool) Put(p []byte) {
	if cap(p) >= copyBufSize {
		b.p.Put((*[copyBufSize]byte)(p[:copyBufSize]))
	}
}

// serveConnect opens a tunnel to the CONNECT request's target through an upstream, then answers
// 200 and passes bytes both ways untouched.
func (s *Server) serveConnect(w http.ResponseWriter, r *http.Request, rt *route) {
	target, err := proxydial.ParseTarget(r.Host)
	if err != nil {
		http.Error(w, "proxyline: CONNECT "+err.Error(), http.StatusBadRequest)
		return
	}
	up, conn, err := s.dialTunnel(r.Context(), rt, target.String())
	if err != nil {
		if r.Context().Err() == nil {
			code := statusOf(err)
			if proxydial.TargetFault(err) {
				code = http.StatusBadGateway
			}
			http.Error(w, "proxyline: "+secret.Redact(err.Error()), code)
		}
		return
	}
	rc := http.NewResponseController(w)
	client, brw, err := rc.Hijack()
	if err != nil {
		_ = conn.Close()
		http.Error(w, "proxyline: cannot take over the connection", http.StatusInternalServerError)
		return
	}
	head := "HTTP/1.1 200 Connection established\r\n"
	if s.cfg.UpstreamHeader != "" {
		head += s.cfg.UpstreamHeader + ": " + up.label + "\r\n"
	}
	if _, err := io.WriteString(client, head+"\r\n"); err != nil {
		_ = conn.Close()
		_ = client.Close()
		return
	}
	s.runTunnel(client, brw.Reader, conn, up)
}

// dialTunnel connects to target through an upstream, trying others after a failure (any failure
// of a tunnel's dial is before a byte of the client reached the target).
func (s *Server) dialTunnel(ctx context.Context, rt *route, target string) (*upstream, net.Conn, error) {
	var lastErr error
	for attempt := 0; attempt <= s.cfg.Retries; attempt++ {
		u, err := s.pick(rt)
		if err != nil {
			if lastErr != nil {
				return nil, nil, fmt.Errorf("%w (last failure: %v)", err, lastErr)
			}
			return nil, nil, err
		}
		u.requests.Add(1)
		start := time.Now()
		dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
		stop := context.AfterFunc(s.ctx, cancel) // a forced stop ends dials too
		c, err := proxydial.Dial(dctx, u.p, "tcp", target, s.upTLS)
		stop()
		cancel()
		s.observe(u, start, err)
		if err == nil {
			u.succeeded(time.Since(start))
			u.tunnels.Add(1)
			return u, c, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		s.failed(u, err)
		rt.tried = append(rt.tried, u)
		lastErr = err
	}
	return nil, nil, lastErr
}
