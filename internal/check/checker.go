package check

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// Checker checks proxies against one judge. It is safe for concurrent use: its fields are set
// by New (and our address and the judge's by Prepare) and only read by checks; every check builds
// its own dialer, connection, buffers and token. The only state checks share is the judge's TLS
// session cache (see judgeTLS) and the pool of idle buffers.
type Checker struct {
	opts    Options
	judge   *judge                     // read-only after New
	realIP  atomic.Pointer[netip.Addr] // learned by Prepare when Options.RealIP is empty
	judgeIP atomic.Pointer[netip.Addr] // the judge's IPv4 address for SOCKS4, resolved by Prepare
	curves  []tls.CurveID              // key exchanges offered, judge and https proxies; read-only
	// The TLS spoken with the judge (judgeTLS): modernTLS until Prepare finds that the judge
	// speaks resumableTLS (nil with Options.PostQuantum). Each is shared by every check.
	tls                     atomic.Pointer[judgeTLS]
	modernTLS, resumableTLS *judgeTLS
	// Handshakes with the judge, full or resumed: tests and benchmarks verify that resumption
	// actually happens.
	tlsFull, tlsResumed atomic.Int64
	bufs                sync.Pool // *buffers, reused between checks, never shared by two at once
}

// New returns a Checker for opts. It does no I/O; call Prepare before checking to learn our
// address as the judge sees it (needed to detect transparent proxies) and to verify the judge.
func New(opts Options) (*Checker, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("check options: %w", err)
	}
	opts = opts.withDefaults()
	j, err := parseJudge(opts)
	if err != nil {
		return nil, err
	}
	c := &Checker{opts: opts, judge: j}
	if j.realIP.IsValid() {
		ip := j.realIP
		c.realIP.Store(&ip)
	}
	if j.ip.IsValid() {
		ip := j.ip
		c.judgeIP.Store(&ip)
	}
	c.curves = curvePreferences(opts)
	c.modernTLS = modern(opts, j.host, c.curves)
	if !opts.PostQuantum {
		c.resumableTLS = resumable12(opts, j.host, c.curves)
	}
	c.tls.Store(c.modernTLS)
	c.bufs.New = func() any { return newBuffers() }
	return c, nil
}

// RealIP returns our address as the judge sees it, or "" when unknown.
func (c *Checker) RealIP() string {
	if ip := c.realIP.Load(); ip != nil {
		return ip.String()
	}
	return ""
}

// Prepare makes a direct request (no proxy) to the judge: it verifies that the judge answers as
// configured and learns our own address as the judge sees it, unless Options.RealIP gave it.
// For a judge given by name it also resolves the judge's IPv4 address, which SOCKS4 needs. For
// an https judge it chooses the TLS the checks speak (TLS 1.2 resumption when the judge allows
// it, see judgeTLS) and stores the first session, so that the checks resume from the start.
func (c *Checker) Prepare(ctx context.Context) error {
	j := c.judge
	if !j.ip.IsValid() {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", j.host)
		if err == nil && len(ips) > 0 {
			ip := ips[0].Unmap()
			c.judgeIP.Store(&ip)
		} else if err != nil {
			c.opts.Log.Warn("judge has no IPv4 address; SOCKS4 proxies will fail", "judge", j.host, "err", err)
		}
	}
	v, err := c.fetchDirect(ctx, time.Now().Add(c.opts.Timeout))
	if err != nil {
		return fmt.Errorf("prepare: judge %s: %w", c.opts.Judge, err)
	}
	if c.realIP.Load() != nil {
		return nil
	}
	if v.exitIP == "" {
		c.opts.Log.Warn("judge does not report our address; transparent proxies cannot be told from anonymous ones", "judge", c.opts.Judge)
		return nil
	}
	ip, err := netip.ParseAddr(v.exitIP)
	if err != nil {
		return fmt.Errorf("prepare: judge %s reports remote_ip %q: %w", c.opts.Judge, trunc(v.exitIP), err)
	}
	ip = ip.Unmap()
	c.realIP.Store(&ip)
	c.opts.Log.Debug("judge ready", "judge", c.opts.Judge, "real_ip", ip)
	return nil
}

// fetchDirect fetches the judge page without a proxy. For an https judge it offers resumableTLS
// first, and keeps it for the checks if the judge accepts it and gives a session ticket (without
// one, TLS 1.2 saves nothing); a judge that refuses it with a TLS error (TLS 1.3 only, or none
// of its cipher suites) is asked again with modernTLS, which the checks then use.
func (c *Checker) fetchDirect(ctx context.Context, deadline time.Time) (verdict, error) {
	direct := func() (verdict, error) {
		a := c.newAttempt(ctx, proxy.Proxy{}, deadline)
		defer a.release()
		return a.direct()
	}
	if !c.judge.tls || c.resumableTLS == nil {
		return direct()
	}
	c.tls.Store(c.resumableTLS)
	v, err := direct()
	if err == nil && c.resumableTLS.sessions.stored.Load() {
		c.opts.Log.Debug("judge resumes TLS 1.2 sessions; checks use them", "judge", c.opts.Judge)
		return v, nil
	}
	c.tls.Store(c.modernTLS)
	if err == nil {
		c.opts.Log.Debug("judge gives no TLS 1.2 session ticket; checks use TLS 1.3", "judge", c.opts.Judge)
		return v, nil
	}
	if classOf(err) != TLSError {
		return v, err
	}
	c.opts.Log.Debug("judge refuses TLS 1.2 with AEAD cipher suites; checks use TLS 1.3", "judge", c.opts.Judge, "err", err)
	return direct()
}

// Check checks one proxy and returns its Result; it never fails otherwise. A proxy whose Scheme
// is Unknown is probed: the protocols are tried in turn within the one timeout, and the Result's
// Proxy carries the scheme that answered. Safe for concurrent use.
func (c *Checker) Check(ctx context.Context, p proxy.Proxy) Result {
	start := time.Now()
	deadline := start.Add(c.opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var r Result
	if p.Scheme == proxy.Unknown {
		r = c.probe(ctx, p, deadline)
	} else {
		r = c.checkAs(ctx, p, deadline)
	}
	r.CheckedAt = start
	r.Total = time.Since(start)
	return r
}

// CheckAll checks ps with at most concurrency checks at a time and calls emit with each Result,
// from one goroutine at a time (the caller's). It returns when every started check has been
// emitted. When ctx is canceled no new check starts; checks in flight end at once and are
// emitted with Class Canceled; proxies never started are not emitted.
func (c *Checker) CheckAll(ctx context.Context, ps []proxy.Proxy, concurrency int, emit func(Result)) {
	in := make(chan proxy.Proxy)
	go func() {
		defer close(in)
		for _, p := range ps {
			select {
			case in <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	c.CheckStream(ctx, in, min(concurrency, len(ps)), func(_ proxy.Proxy, r Result) { emit(r) })
}

// CheckStream checks the proxies received from in as they come, at most concurrency at a time,
// and calls emit with each proxy as received and its Result, from one goroutine at a time (the
// caller's). It returns once in is closed and every started check has been emitted: the sender
// must close in. When ctx is canceled no new check starts (what is still received is dropped,
// not emitted); checks in flight end at once and are emitted with Class Canceled.
func (c *Checker) CheckStream(ctx context.Context, in <-chan proxy.Proxy, concurrency int, emit func(given proxy.Proxy, r Result)) {
	n := max(concurrency, 1)
	type done struct {
		given proxy.Proxy
		r     Result
	}
	results := make(chan done, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for p := range in {
				if ctx.Err() == nil {
					results <- done{p, c.Check(ctx, p)}
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	for d := range results {
		emit(d.given, d.r)
	}
}

// checkAs checks p speaking p.Scheme.
func (c *Checker) checkAs(ctx context.Context, p proxy.Proxy, deadline time.Time) Result {
	a := c.newAttempt(ctx, p, deadline)
	defer a.release()
	r := Result{Proxy: p}
	v, err := a.run()
	r.Connect = a.connect
	if err != nil {
		r.Class = classOf(err)
		r.Err = err.Error()
		return r
	}
	r.Class = Alive
	r.ExitIP = v.exitIP
	r.Anonymity = v.anonymity
	return r
}

// probe finds the protocol of a bare host:port. The order matters: every SOCKS server and
// every TLS server hangs up at once on an HTTP request line, and a SOCKS server on a TLS
// ClientHello or a greeting of the other SOCKS version, while an HTTP proxy (or a TLS server)
// would wait for the rest of a SOCKS greeting that never comes. A refused port, a timeout (the
// budget is spent) or any answer in the protocol tried ends the probe; only a reply in the wrong
// protocol moves on. The Result's Connect is the attempt that answered; Total covers them all.
func (c *Checker) probe(ctx context.Context, p proxy.Proxy, deadline time.Time) Result {
	var r Result
	for _, s := range c.probeOrder() {
		p.Scheme = s
		r = c.checkAs(ctx, p, deadline)
		if r.Class != BadResponse {
			break
		}
	}
	switch r.Class {
	case Refused, Timeout, Canceled, BadResponse:
		// Nothing answered in a protocol we know: the scheme stays unknown.
		r.Proxy.Scheme = proxy.Unknown
	}
	return r
}

// probeOrder is the order probe tries protocols in; SOCKS4a only when the judge has a name
// (for an IP judge it is the same request as SOCKS4).
func (c *Checker) probeOrder() []proxy.Scheme {
	if c.judge.ip.IsValid() {
		return []proxy.Scheme{proxy.HTTP, proxy.HTTPS, proxy.SOCKS5, proxy.SOCKS4}
	}
	return []proxy.Scheme{proxy.HTTP, proxy.HTTPS, proxy.SOCKS5, proxy.SOCKS4A}
}
