package rotate

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxyline/proxyline/internal/proxydial"
	"github.com/proxyline/proxyline/proxy"
)

// upstream is one upstream proxy with its health and counters. The same *upstream lives across
// refreshes of the set as long as its proxy (credentials included) stays in the source.
type upstream struct {
	p     proxy.Proxy
	key   string // p.String(): holds credentials, never printed
	label string // scheme://host:port, what logs and the upstream header show

	benchedUntil atomic.Int64 // unix nanoseconds; 0 or past: usable
	failsInRow   atomic.Int32
	latency      atomic.Int64 // moving average in nanoseconds; 0: not measured yet

	requests atomic.Int64 // requests and tunnels sent through it (attempts)
	failures atomic.Int64
	tunnels  atomic.Int64
	bytesOut atomic.Int64 // client to upstream
	bytesIn  atomic.Int64 // upstream to client
	lastErr  atomic.Pointer[string]

	trOnce      sync.Once
	tr          atomic.Pointer[http.Transport] // plain HTTP in tunnels; built on first use
	fwdOnce     sync.Once
	fwd         atomic.Pointer[http.Transport] // absolute-URI forwarding, for upstreams refusing CONNECT
	forwardOnly atomic.Bool                    // this HTTP(S) upstream refused CONNECT to an origin

	obs upstreamObs // Config.Observer's recorder of this upstream
}

func newUpstream(p proxy.Proxy) *upstream {
	label := (&proxy.Proxy{Scheme: p.Scheme, Host: p.Host, Port: p.Port}).String()
	return &upstream{p: p, key: p.String(), label: label}
}

// usable reports whether the upstream is not benched at now (unix nanoseconds).
func (u *upstream) usable(now int64) bool { return u.benchedUntil.Load() <= now }

// succeeded records a success that took d (to the response head, or to the tunnel).
func (u *upstream) succeeded(d time.Duration) {
	if u.failsInRow.Load() != 0 {
		u.failsInRow.Store(0)
	}
	sample := max(int64(d), 1)
	for {
		old := u.latency.Load()
		next := sample
		if old != 0 {
			next = old + (sample-old)/8 // exponential moving average, weight 1/8
		}
		if u.latency.CompareAndSwap(old, max(next, 1)) {
			return
		}
	}
}

// bench records a failure of the upstream itself and leaves it out for cooldown, doubled for each
// failure in a row, up to maxBench. It returns how long.
func (u *upstream) bench(now int64, cooldown, maxBench time.Duration, err error) time.Duration {
	u.failures.Add(1)
	msg := err.Error()
	u.lastErr.Store(&msg)
	n := u.failsInRow.Add(1)
	d := cooldown
	for i := int32(1); i < n && d < maxBench; i++ {
		d *= 2
	}
	d = min(d, maxBench)
	u.benchedUntil.Store(now + int64(d))
	return d
}

// transport returns the upstream's HTTP transport for plain HTTP requests. Every kind of
// upstream carries them in tunnels to the origin (CONNECT or SOCKS), which the transport keeps
// alive and reuses: the upstream sees only bytes (it cannot add headers), and a request costs no
// new connection through it. An HTTP(S) upstream that refuses CONNECT to the origin's port (a
// common proxy rule: CONNECT only to 443) is switched to absolute-URI forwarding
// (forwardTransport) for good.
func (u *upstream) transport(s *Server) *http.Transport {
	if u.forwardOnly.Load() {
		return u.forwardTransport(s)
	}
	u.trOnce.Do(func() {
		t := newTransport(s)
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
			defer cancel()
			return proxydial.Dial(ctx, u.p, network, addr, s.upTLS)
		}
		u.tr.Store(t)
	})
	return u.tr.Load()
}

// forwardTransport sends absolute-URI requests to an HTTP(S) upstream, which keeps the connection
// alive if it can.
func (u *upstream) forwardTransport(s *Server) *http.Transport {
	u.fwdOnce.Do(func() {
		t := newTransport(s)
		t.Proxy = http.ProxyURL(u.p.URL())
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
			defer cancel()
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &proxydial.Error{Phase: proxydial.PhaseConnect, Proxy: u.p.Addr(), Err: err}
			}
			return c, nil
		}
		u.fwd.Store(t)
	})
	return u.fwd.Load()
}

func newTransport(s *Server) *http.Transport {
	return &http.Transport{
		DisableCompression: true, // never add Accept-Encoding nor undo the origin's encoding
		// At most 4 idle tunnels per upstream, whatever the number of origins: 500 upstreams
		// keep at most 2,000 connections idle.
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: s.cfg.DialTimeout,
		TLSClientConfig:     s.upTLS,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
	}
}

// connectRefused reports an HTTP(S) upstream's refusal of CONNECT itself (not of the target):
// 403, 405 or 501 to the CONNECT request.
func (u *upstream) connectRefused(err error) bool {
	var re *proxydial.ReplyError
	if u.p.Scheme != proxy.HTTP && u.p.Scheme != proxy.HTTPS || !errors.As(err, &re) {
		return false
	}
	switch re.Code {
	case http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return re.Kind == proxydial.Unreachable
	}
	return false
}

// closeIdle closes the idle connections of u's transport, if it has one. (A request already
// routed to u may still build one; its idle connections then close after IdleConnTimeout.)
func (u *upstream) closeIdle() {
	for _, t := range []*http.Transport{u.tr.Load(), u.fwd.Load()} {
		if t != nil {
			t.CloseIdleConnections()
		}
	}
}

// UpstreamStats are the counters of one upstream, for operations.
type UpstreamStats struct {
	Upstream     string        `json:"upstream"` // scheme://host:port
	Requests     int64         `json:"requests"` // requests and tunnels sent through it, retries included
	Failures     int64         `json:"failures"` // failures blamed on it (each benched it)
	Tunnels      int64         `json:"tunnels"`
	BytesOut     int64         `json:"bytes_out"` // client to upstream (request bodies, tunnel bytes)
	BytesIn      int64         `json:"bytes_in"`  // upstream to client
	Latency      time.Duration `json:"latency"`   // moving average to the response head or the tunnel
	BenchedUntil time.Time     `json:"benched_until,omitzero"`
	LastError    string        `json:"last_error,omitempty"`
}

func (u *upstream) stats() UpstreamStats {
	st := UpstreamStats{Upstream: u.label, Requests: u.requests.Load(), Failures: u.failures.Load(),
		Tunnels: u.tunnels.Load(), BytesOut: u.bytesOut.Load(), BytesIn: u.bytesIn.Load(),
		Latency: time.Duration(u.latency.Load())}
	if b := u.benchedUntil.Load(); b > time.Now().UnixNano() {
		st.BenchedUntil = time.Unix(0, b)
	}
	if e := u.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

// upstreamSet is one snapshot of the upstreams; it is never changed once published.
type upstreamSet struct {
	list  []*upstream
	byKey map[string]*upstream
}

// newSet builds a set for ps, reusing prev's upstreams for proxies it already had (their health
// and counters carry over). It returns the upstreams of prev that are gone.
func newSet(ps []proxy.Proxy, prev *upstreamSet, seed map[string]time.Duration) (*upstreamSet, []*upstream) {
	s := &upstreamSet{byKey: make(map[string]*upstream, len(ps))}
	for _, p := range ps {
		k := p.String()
		if _, dup := s.byKey[k]; dup {
			continue
		}
		u := prev.byKey[k]
		if u == nil {
			u = newUpstream(p)
			if d, ok := seed[k]; ok && d > 0 {
				u.latency.Store(int64(d))
			}
		}
		s.byKey[k] = u
		s.list = append(s.list, u)
	}
	var gone []*upstream
	for k, u := range prev.byKey {
		if _, ok := s.byKey[k]; !ok {
			gone = append(gone, u)
		}
	}
	return s, gone
}
