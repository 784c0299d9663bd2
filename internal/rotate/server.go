package rotate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/secret"
	"github.com/proxyline/proxyline/internal/serve"
	"github.com/proxyline/proxyline/proxy"
)

// Server is the rotating proxy server. Build it with New, then Start and Stop (the lifecycle of
// every long-lived service, docs/lifecycle.md); Run does all three for a command.
type Server struct {
	cfg   Config
	log   *slog.Logger
	upTLS *tls.Config // TLS with https:// upstreams

	gate      *serve.Gate // main listener (and the inbound credentials)
	socksGate *serve.Gate // the SOCKS5 listener, or nil
	in        inbound

	set         atomic.Pointer[upstreamSet]
	counter     atomic.Uint64 // requests that went to the policy: the rotation counter
	tunnelsOpen atomic.Int64
	seed        uint64 // for the random policy's rotation windows
	sticky      *stickyMap
	src         source

	proxy     *httputil.ReverseProxy
	buffers   sync.Pool     // *[copyBufSize]byte: copy buffers of responses and tunnels
	headDelay time.Duration // headFlushDelay
	httpSrv   *http.Server
	queue     *connQueue // connections sniffed as HTTP, for httpSrv

	ctx    context.Context // canceled when Stop gives up draining: ends dials and tunnels
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine Start begins, and every connection's

	mu        sync.Mutex            // guards listeners, conns and stopping
	listeners []net.Listener        // guarded by mu
	conns     map[*trackedConn]bool // guarded by mu: open inbound connections we serve ourselves (value: busy)
	stopping  bool                  // guarded by mu
	forced    bool                  // guarded by mu: the drain ended; nothing new is tracked
	handlers  atomic.Int64          // HTTP handlers running (Shutdown does not wait for hijacked ones)
	idle      *sync.Cond            // on mu: signalled when a tracked connection ends

	life lifecycle.Once
}

// New validates cfg and builds a Server; it does no I/O but reading the credentials and CA files.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: cfg.Log, seed: rand.Uint64(), conns: map[*trackedConn]bool{},
		sticky: newStickyMap(cfg.StickyTTL, cfg.StickyMax), headDelay: headFlushDelay}
	s.idle = sync.NewCond(&s.mu)
	s.buffers.New = func() any { return new([copyBufSize]byte) }
	s.set.Store(&upstreamSet{byKey: map[string]*upstream{}})
	var err error
	if s.gate, err = cfg.Listen.Gate(cfg.Log); err != nil {
		return nil, err
	}
	if cfg.SOCKSListen != "" {
		o := cfg.Listen
		o.Listen = cfg.SOCKSListen
		if s.socksGate, err = o.Gate(cfg.Log); err != nil {
			return nil, err
		}
	}
	s.in = inbound{gate: s.gate, sticky: cfg.Sticky}
	s.upTLS = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.UpstreamCA != "" {
		pem, err := os.ReadFile(cfg.UpstreamCA)
		if err != nil {
			return nil, fmt.Errorf("--upstream-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--upstream-ca %s: no PEM certificate in it", cfg.UpstreamCA)
		}
		s.upTLS.RootCAs = pool
	}
	s.proxy = s.newReverseProxy()
	return s, nil
}

// Start loads the upstreams, binds the listeners (by internal/serve's rule) and starts serving;
// it returns once the server accepts connections. ctx bounds only the start-up. On error nothing
// is left running. A second Start returns lifecycle.ErrStarted, a Start after Stop
// lifecycle.ErrStopped.
func (s *Server) Start(ctx context.Context) error {
	return s.life.Start(func() error { return s.start(ctx) })
}

func (s *Server) start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	src, err := s.openSource(ctx)
	if err != nil {
		s.cancel()
		return err
	}
	s.src = src
	if err := s.listen(); err != nil {
		s.closeListeners()
		src.close()
		s.cancel()
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.refreshLoop()
	}()
	s.log.Info("rotator ready", s.readyAttrs()...)
	return nil
}

func (s *Server) readyAttrs() []any {
	attrs := []any{"listen", s.Addr().String()}
	if a := s.SOCKSAddr(); a != nil {
		attrs = append(attrs, "socks_listen", a.String())
	}
	attrs = append(attrs, "from", secret.Redact(s.src.name()), "upstreams", len(s.set.Load().list),
		"policy", s.cfg.Policy, "rotate_every", s.cfg.RotateEvery, "sticky", s.cfg.Sticky,
		"auth", s.gate.Authenticated())
	return attrs
}

// Addr returns the main listener's address (after Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.listeners) == 0 {
		return nil
	}
	return s.listeners[0].Addr()
}

// SOCKSAddr returns the SOCKS5 listener's address, or nil without one.
func (s *Server) SOCKSAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.listeners) < 2 {
		return nil
	}
	return s.listeners[1].Addr()
}

// Stop stops the server and returns once every goroutine and connection of it has ended. It is
// idempotent, safe without Start, and safe to call from several goroutines; the context of any
// call cuts the drain (docs/lifecycle.md).
//
// Shutdown order:
//  1. refuse: mark stopping and close the listeners (no new connection);
//  2. drain: shut the HTTP server down (idle keep-alive connections close at once, requests in
//     flight finish) while waiting for the tunnels and SOCKS5 connections to end, while ctx lives;
//  3. cut (ctx ended first): close the HTTP server and every tracked connection, cancel dials;
//  4. wait and release: every connection's goroutine ends (at once after the cut), then the
//     source stops (pending pool reports are written first: nothing reports to it any more),
//     then idle upstream connections close; bound after the cut: milliseconds, and the source's
//     last pool write;
//  5. error: connections the cut closed (wrapping ctx's cause).
func (s *Server) Stop(ctx context.Context) error {
	return s.life.Stop(ctx, s.stop)
}

func (s *Server) stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.closeListeners()
	drained := make(chan error, 1)
	go func() { drained <- s.httpSrv.Shutdown(ctx) }()
	idle := s.waitIdle(ctx)
	err := <-drained
	if err != nil || !idle || !s.waitIdle(ctx) { // again: a CONNECT may have become a tunnel meanwhile
		n := s.closeConns()
		_ = s.httpSrv.Close()
		s.cancel() // dials in progress end
		s.log.Warn("drain deadline: closed what was still open", "tunnels_and_socks_connections", n)
		// Everything is closed and every dial canceled: what is left ends at once.
		s.waitIdle(context.Background())
		err = fmt.Errorf("rotator: stop cut short, %d tunnel(s) and SOCKS5 connection(s) closed, requests in flight cut: %w", n, context.Cause(ctx))
	}
	s.cancel()
	s.wg.Wait()
	s.src.close() // after every connection ended: nothing reports to it any more
	for _, u := range s.set.Load().list {
		u.closeIdle()
	}
	s.log.Info("rotator stopped", "drained", err == nil)
	return err
}

// waitIdle waits until no tracked connection is open and no HTTP handler runs, or ctx ends; it
// reports whether all ended. Connections waiting for their first byte are closed at once:
// nothing was asked yet.
func (s *Server) waitIdle(ctx context.Context) bool {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.idle.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, busy := range s.conns {
		if !busy {
			_ = c.Conn.Close()
		}
	}
	for (len(s.conns) > 0 || s.handlers.Load() > 0) && ctx.Err() == nil {
		s.idle.Wait()
	}
	return len(s.conns) == 0 && s.handlers.Load() == 0
}

// handlerDone ends the count of one HTTP handler; the last one wakes waitIdle.
func (s *Server) handlerDone() {
	if s.handlers.Add(-1) == 0 {
		s.mu.Lock()
		s.idle.Broadcast()
		s.mu.Unlock()
	}
}

// closeConns closes every tracked connection (and its tunnel's other side), refuses to track new
// ones, and returns how many there were.
func (s *Server) closeConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forced = true
	for c := range s.conns {
		_ = c.Conn.Close()
		if c.peer != nil {
			_ = c.peer.Close()
		}
	}
	return len(s.conns)
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	ls := s.listeners
	s.mu.Unlock()
	for _, ln := range ls {
		_ = ln.Close()
	}
	if s.queue != nil {
		s.queue.Close()
	}
}

// Stats returns the counters of every current upstream, by label.
func (s *Server) Stats() []UpstreamStats {
	set := s.set.Load()
	out := make([]UpstreamStats, 0, len(set.list))
	for _, u := range set.list {
		out = append(out, u.stats())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Upstream < out[j].Upstream })
	return out
}

// publish makes ps the upstreams, keeping the state of those already known. seed gives initial
// latencies (the pool's measurements), by proxy string.
func (s *Server) publish(ps []proxy.Proxy, seed map[string]time.Duration) (added, removed int) {
	prev := s.set.Load()
	next, gone := newSet(ps, prev, seed)
	s.set.Store(next)
	for _, u := range gone {
		u.closeIdle()
	}
	return len(next.list) - (len(prev.list) - len(gone)), len(gone)
}

// Run starts a Server for cfg, serves until ctx is canceled, then stops it, draining for
// cfg.Drain (cut short when force is closed). It is the whole of `proxyline serve`.
func Run(ctx context.Context, cfg Config, force <-chan struct{}) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	s.log.Info("rotator stopping", "drain", s.cfg.Drain)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Drain)
	defer cancel()
	go func() {
		select {
		case <-force:
			cancel()
		case <-dctx.Done():
		}
	}()
	if err := s.Stop(dctx); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
