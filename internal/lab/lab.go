// Package lab is a loopback proxy farm for tests, demos and benchmarks: HTTP, HTTPS, SOCKS4,
// SOCKS4a and SOCKS5 proxies that work, need credentials, refuse, hang, answer slowly, lie or
// alter what they forward, plus a judge (plain and TLS) and a CA that signs both. Every proxy has
// its own address in 127.0.0.0/8 (from 127.0.0.3 up; the judge is 127.0.0.2, 127.0.0.1 is never
// used) and dials onwards from that address, so the judge sees each proxy's own exit IP. Nothing
// ever leaves the machine: the proxies connect onwards only to loopback addresses.
//
// A farm of 20,000 proxies costs a few dozen file descriptors: each kind is one listening socket
// on the wildcard address, bound to the loopback device, and the address a connection was made to
// says which proxy it reached. See docs/lab.md for the design and its trade-offs.
package lab

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/proxy"
)

// Kinds of proxy in the lab, as written in Truth.Kind and truth.jsonl.
const (
	KindHTTP        = "http"        // elite HTTP proxy: absolute-URI GET and CONNECT
	KindHTTPAuth    = "http_auth"   // elite HTTP proxy that wants Basic credentials (407 without)
	KindHTTPS       = "https"       // elite HTTP proxy reached over TLS (cert signed by the lab CA)
	KindSOCKS4      = "socks4"      // SOCKS4 CONNECT to IPv4 addresses
	KindSOCKS4A     = "socks4a"     // SOCKS4 and SOCKS4a (the proxy resolves loopback names)
	KindSOCKS5      = "socks5"      // SOCKS5 without authentication
	KindSOCKS5Auth  = "socks5_auth" // SOCKS5 with user/password (RFC 1929)
	KindTransparent = "transparent" // HTTP proxy adding Via and X-Forwarded-For: <client ip>
	KindAnonymous   = "anonymous"   // HTTP proxy adding Via and X-Forwarded-For: <its own ip>
	KindRefused     = "refused"     // nothing listens: connection refused
	KindBlackhole   = "blackhole"   // accepts, never answers
	KindSlow        = "slow"        // elite HTTP proxy that answers after Config.SlowDelay
	KindLiar        = "liar"        // HTTP proxy answering with a forged judge page, never forwarding
	KindAlter       = "alter"       // HTTP proxy that forwards but changes the token in the body
	KindBare        = "bare"        // elite HTTP or SOCKS5 proxy listed without scheme
)

// Expected outcome classes in Truth.Class. They are the values of internal/check's Class (this
// package does not import check so that check's tests can import the lab).
const (
	ClassAlive    = "alive"
	ClassRefused  = "refused"
	ClassTimeout  = "timeout"
	ClassMismatch = "mismatch"
)

// DefaultCount is how many proxies of each kind a Config with no counts at all gets.
const DefaultCount = 5

// DefaultSlowDelay is Config.SlowDelay's default.
const DefaultSlowDelay = 1500 * time.Millisecond

// MaxProxies bounds the total number of proxies in one lab.
const MaxProxies = 1_000_000

// Config says what the lab holds. If every count is zero, the lab holds DefaultCount proxies of
// each kind (SlowDelay and the other fields keep their meaning); otherwise exactly the counts given.
type Config struct {
	HTTP       int // live elite HTTP proxies
	HTTPAuth   int // live elite HTTP proxies that want Basic credentials (candidates carry them)
	HTTPS      int // live elite HTTP proxies reached over TLS; trust CAPool to reach them
	SOCKS4     int // live SOCKS4 proxies
	SOCKS4A    int // live SOCKS4a proxies
	SOCKS5     int // live SOCKS5 proxies without authentication
	SOCKS5Auth int // live SOCKS5 proxies with user/password (candidates carry them)

	Transparent int // live HTTP proxies that add Via and X-Forwarded-For: <client ip>
	Anonymous   int // live HTTP proxies that add Via and X-Forwarded-For: <their own ip>

	Refused   int // addresses where nothing listens: connection refused
	Blackhole int // accept the connection, never answer, hold it until the client closes

	Slow int // live elite HTTP proxies that answer each request after SlowDelay
	// SlowDelay is how long slow proxies wait before answering. Default DefaultSlowDelay (1.5 s).
	SlowDelay time.Duration
	// HoldSlow makes the slow proxies hold every request until ReleaseSlow (then SlowDelay
	// more): a test that must act while checks are running (kill the worker running them) then
	// does not depend on acting within SlowDelay, which a busy machine cannot promise.
	HoldSlow bool

	Liar  int // answer absolute-URI and CONNECT requests with a forged judge page, never forwarding
	Alter int // forward, but change the token in the judge page (or flip a byte in a tunnel)
	Bare  int // live elite proxies (alternately HTTP and SOCKS5) listed as bare host:port

	// Sources, if positive, starts a source server (see Sources) serving the candidates split
	// into that many proxy list sources in every format, plus the hostile sources; with Dir it
	// writes sources.txt, sources.toml and hostile.toml there. Default 0: none.
	Sources int
	// SlowSources is how many of those sources stall for SlowSourceDelay (default
	// DefaultSlowSourceDelay) after half their body.
	SlowSources     int
	SlowSourceDelay time.Duration
	// Backend, if set, also serves an origin server on 127.0.0.2 for the rotator's tests and
	// benchmarks (see BackendURL; it does not count as a proxy, so a Config with only Backend
	// still gets the default counts). Default: none.
	Backend bool

	// Dir, if set, is a directory (created if missing) where Start writes candidates.txt,
	// truth.jsonl, ca.pem and judge.txt. Default: no files.
	Dir string
	// Log receives the lab's diagnostics. Default: discarded.
	Log *slog.Logger
	// Hosts maps extra host names to the loopback addresses the proxies connect to for them
	// (CONNECT, absolute-URI requests, SOCKS4a and SOCKS5 by name). Names are matched without
	// case and trailing dot; every address must be in loopback. It lets a tool that always asks a
	// fixed public judge (mubeng asks ipinfo.io) be measured against the lab inside a private
	// network namespace (scripts/netns-ipinfo.sh). Default: none; localhost, *.localhost and
	// loopback IP literals are reached either way. No DNS is ever consulted.
	Hosts map[string]netip.Addr

	holdLimit int // blackhole connections held at once; default maxHeld (tests lower it)
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	total := 0
	for _, k := range c.counts() {
		if k.n < 0 {
			return fmt.Errorf("lab config: %s count %d is negative", k.kind, k.n)
		}
		total += k.n
	}
	if total > MaxProxies {
		return fmt.Errorf("lab config: %d proxies, more than the maximum %d", total, MaxProxies)
	}
	if c.Sources < 0 || c.SlowSources < 0 || c.SlowSources > c.Sources || c.SlowSourceDelay < 0 {
		return fmt.Errorf("lab config: sources %d, slow sources %d, delay %v: want 0 <= slow <= sources, delay >= 0",
			c.Sources, c.SlowSources, c.SlowSourceDelay)
	}
	if c.SlowDelay < 0 {
		return fmt.Errorf("lab config: slow delay %v is negative", c.SlowDelay)
	}
	for name, ip := range c.Hosts {
		if hostKey(name) == "" || strings.ContainsAny(name, ":/[] ") {
			return fmt.Errorf("lab config: hosts: %q is not a host name", name)
		}
		if !ip.Unmap().IsLoopback() || ip.Zone() != "" {
			return fmt.Errorf("lab config: hosts: %s maps to %s, not a loopback address", name, ip)
		}
	}
	return nil
}

type kindCount struct {
	kind string
	n    int
}

// counts lists the kinds in a fixed order with their counts as configured.
func (c Config) counts() []kindCount {
	return []kindCount{
		{KindHTTP, c.HTTP}, {KindHTTPAuth, c.HTTPAuth}, {KindHTTPS, c.HTTPS},
		{KindSOCKS4, c.SOCKS4}, {KindSOCKS4A, c.SOCKS4A}, {KindSOCKS5, c.SOCKS5}, {KindSOCKS5Auth, c.SOCKS5Auth},
		{KindTransparent, c.Transparent}, {KindAnonymous, c.Anonymous},
		{KindRefused, c.Refused}, {KindBlackhole, c.Blackhole}, {KindSlow, c.Slow},
		{KindLiar, c.Liar}, {KindAlter, c.Alter}, {KindBare, c.Bare},
	}
}

// withDefaults returns c with the defaults applied.
func (c Config) withDefaults() Config {
	empty := true
	for _, k := range c.counts() {
		if k.n != 0 {
			empty = false
		}
	}
	if empty {
		n := DefaultCount
		c.HTTP, c.HTTPAuth, c.HTTPS, c.SOCKS4, c.SOCKS4A, c.SOCKS5, c.SOCKS5Auth = n, n, n, n, n, n, n
		c.Transparent, c.Anonymous, c.Refused, c.Blackhole, c.Slow, c.Liar, c.Alter, c.Bare = n, n, n, n, n, n, n, n
	}
	if c.SlowDelay == 0 {
		c.SlowDelay = DefaultSlowDelay
	}
	if c.holdLimit == 0 {
		c.holdLimit = maxHeld
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Truth is what a correct checker reports for one candidate.
type Truth struct {
	Proxy     proxy.Proxy   // the candidate exactly as Candidates lists it
	Kind      string        // one of the Kind constants
	Alive     bool          // a correct checker says alive (slow ones: if its timeout exceeds Delay)
	Scheme    proxy.Scheme  // the protocol the proxy speaks (for bare candidates, what a probe must find)
	Anonymity string        // transparent, anonymous or elite for live proxies; "" otherwise
	ExitIP    string        // the address the judge sees for live proxies; "" otherwise
	Class     string        // the expected check class: alive, refused, timeout or mismatch
	Delay     time.Duration // how long the proxy waits before answering (slow proxies), else 0
}

// Lab is a running proxy farm. Its methods are safe for concurrent use.
type Lab struct {
	cfg        Config
	log        *slog.Logger
	candidates []proxy.Proxy
	truth      []Truth
	byAddr     map[[4]byte]*entry // read-only after Start
	ca         *authority
	judgeURL   string
	judgeTLS   string
	hosts      map[string]netip.Addr // Config.Hosts with normalized keys; read-only after Start
	sources    *Sources              // nil unless Config.Sources > 0
	backend    *backend              // nil unless Config.Backend; set by start

	// dialHook, if set (by tests and fuzzers only), replaces the outbound dial.
	dialHook func(target netip.AddrPort) (net.Conn, error)

	slowGate    chan struct{} // closed by ReleaseSlow; nil unless Config.HoldSlow
	releaseSlow sync.Once

	ctx    context.Context // canceled by Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the lab starts
	life   lifecycle.Once

	mu      sync.Mutex          // guards closers and stopped
	closers map[closer]struct{} // guarded by mu: listeners and connections to close on Stop
	stopped bool                // guarded by mu
}

// closer is the part of net.Conn, net.Listener and http.Server that Stop needs.
type closer interface{ Close() error }

// Start builds the lab and starts serving it, and returns once it serves. ctx bounds only the
// start-up; the lab runs until Stop. On error nothing is left running.
//
// A lab is useless before it listens (its addresses do not exist yet), so Start is its
// constructor too: the one exception to New followed by Start (docs/lifecycle.md).
func Start(ctx context.Context, cfg Config) (*Lab, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	l := &Lab{cfg: cfg, log: cfg.Log, closers: map[closer]struct{}{}, hosts: map[string]netip.Addr{}}
	if cfg.HoldSlow {
		l.slowGate = make(chan struct{})
	}
	for name, ip := range cfg.Hosts {
		l.hosts[hostKey(name)] = ip.Unmap()
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	err := l.life.Start(func() error {
		if err := ctx.Err(); err != nil {
			l.cancel()
			return err
		}
		if err := l.start(); err != nil {
			l.shutdown()
			l.wg.Wait()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("start lab: %w", err)
	}
	return l, nil
}

// Candidates returns the proxies as a user would feed them to a checker: bare ones have Scheme
// Unknown, authenticated ones carry their credentials. The slice is a copy.
func (l *Lab) Candidates() []proxy.Proxy { return append([]proxy.Proxy(nil), l.candidates...) }

// Truth returns, in the order of Candidates, what a correct checker reports. The slice is a copy.
func (l *Lab) Truth() []Truth { return append([]Truth(nil), l.truth...) }

// JudgeURL returns the plain HTTP judge, e.g. http://127.0.0.2:41234/.
func (l *Lab) JudgeURL() string { return l.judgeURL }

// JudgeTLSURL returns the HTTPS judge; its certificate is signed by the lab CA, valid for its IP.
func (l *Lab) JudgeTLSURL() string { return l.judgeTLS }

// CAPool returns a pool holding only the lab CA: trust it to reach the TLS judge and HTTPS proxies.
func (l *Lab) CAPool() *x509.CertPool { return l.ca.pool() }

// CAPEM returns the lab CA certificate in PEM.
func (l *Lab) CAPEM() []byte { return append([]byte(nil), l.ca.certPEM...) }

// Stop closes every listener and connection of the lab and waits for all its goroutines. It is
// idempotent and safe to call concurrently (docs/lifecycle.md).
//
// Shutdown order:
//  1. refuse: mark stopped (no new connection is tracked: late ones are closed at once);
//  2. drain: nothing (a lab serves tests; nothing in it is worth finishing);
//  3. cut, at once: cancel the lab context (slow waits and dials end), close listeners (accept
//     loops end), close every tracked connection (handlers and tunnels end), stop the judge
//     servers;
//  4. wait for every goroutine of the lab; bound: ctx itself (they end within milliseconds);
//  5. error: goroutines still running when ctx ended (wrapping ctx's cause).
func (l *Lab) Stop(ctx context.Context) error {
	return l.life.Stop(ctx, l.stop)
}

func (l *Lab) stop(cut context.Context) error {
	l.shutdown()
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	default:
	}
	select {
	case <-done:
		return nil
	case <-cut.Done():
		return fmt.Errorf("lab: connection handlers still running after the stop: %w", context.Cause(cut))
	}
}

// shutdown is steps 1 and 3 of Stop: mark stopped, cancel, close everything tracked.
func (l *Lab) shutdown() {
	l.mu.Lock()
	l.stopped = true
	cs := l.closers
	l.closers = nil
	l.mu.Unlock()
	l.cancel()
	for c := range cs {
		_ = c.Close() // already closed by its handler or peer: nothing to do
	}
}

// track registers c to be closed by Stop. It returns false (and closes c) if the lab is stopping.
func (l *Lab) track(c closer) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		_ = c.Close()
		return false
	}
	l.closers[c] = struct{}{}
	return true
}

// untrack closes c and forgets it.
func (l *Lab) untrack(c closer) {
	_ = c.Close() // closing twice is harmless for sockets
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closers != nil {
		delete(l.closers, c)
	}
}
