package rotate

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/serve"
)

// Policy chooses the upstream of a request that no sticky session binds.
type Policy string

// Policies.
const (
	RoundRobin Policy = "round-robin" // each upstream in turn (per rotation window)
	Random     Policy = "random"      // a random upstream (per rotation window)
	Fastest    Policy = "fastest"     // the lowest moving average of latency; unmeasured ones first
)

// Policies lists the policies.
func Policies() []Policy { return []Policy{RoundRobin, Random, Fastest} }

// Sticky says what binds requests to one upstream for StickyTTL.
type Sticky string

// Sticky modes.
const (
	StickySession Sticky = "session" // a session name in the proxy user name (user-session-NAME)
	StickyClient  Sticky = "client"  // the client's IP address (a session name still wins)
	StickyOff     Sticky = "off"     // nothing: every request follows the policy
)

// FromPool is Config.From's value for the pool's live proxies.
const FromPool = "pool"

// Defaults of the zero Config fields.
const (
	DefaultRetries        = 2
	DefaultBenchCooldown  = 5 * time.Second
	DefaultBenchMax       = 5 * time.Minute
	DefaultStickyTTL      = 10 * time.Minute
	DefaultStickyMax      = 65536
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultMaxHeaderBytes = 64 << 10
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultMaxDuration    = time.Hour
	DefaultDialTimeout    = 10 * time.Second
	DefaultDrain          = 10 * time.Second
	DefaultRefresh        = 2 * time.Second
	DefaultMaxConns       = 4096
)

// Config configures a Server. The zero value of every field but Listen and From means its default.
type Config struct {
	// Listen is the main listener (HTTP, CONNECT, and SOCKS5 told apart by the first byte) with
	// the inbound credentials and the listening rule of internal/serve. Required.
	Listen serve.Options
	// SOCKSListen, if set, is a second listener for SOCKS5 only, under the same rule and
	// credentials. Default: none.
	SOCKSListen string
	// From is where the upstreams come from: FromPool (the pool's live proxies, in Database) or
	// the path of a proxy list file, watched for changes. Required.
	From string
	// Database is the queue database holding the pool (see internal/queue), for From = FromPool.
	// Default queue.DefaultDatabase.
	Database string
	// Policy chooses upstreams. Default RoundRobin.
	Policy Policy
	// RotateEvery sends N consecutive requests through one upstream before moving on (round-robin
	// and random). Default 1.
	RotateEvery int
	// Sticky binds requests to an upstream. Default StickySession.
	Sticky Sticky
	// StickyTTL is how long a sticky binding lasts from its creation. Default DefaultStickyTTL.
	StickyTTL time.Duration
	// StickyMax bounds the number of sticky bindings kept (least recently used ones go first).
	// Default DefaultStickyMax.
	StickyMax int
	// Retries is how many other upstreams a request may try after a failure. Default
	// DefaultRetries; negative: none.
	Retries int
	// BenchCooldown is how long a failed upstream is left out; it doubles with each further
	// failure in a row, up to BenchMax. Defaults DefaultBenchCooldown, DefaultBenchMax.
	BenchCooldown, BenchMax time.Duration
	// UpstreamHeader, if set, is the name of a response header naming the upstream used
	// (scheme://host:port, never credentials). Default: none.
	UpstreamHeader string
	// UpstreamCA is a PEM file of roots for TLS with https:// upstreams. Default: the system roots.
	UpstreamCA string
	// HeaderTimeout bounds reading a request head or a SOCKS5 handshake. Default 10 s.
	HeaderTimeout time.Duration
	// MaxHeaderBytes bounds a request head. Default 64 KiB.
	MaxHeaderBytes int
	// IdleTimeout closes a keep-alive connection, or a tunnel, idle that long. Default 2 min.
	IdleTimeout time.Duration
	// MaxDuration bounds one request (to the end of its response body) or one tunnel. Default 1 h.
	MaxDuration time.Duration
	// DialTimeout bounds one attempt to reach the target through an upstream (connection and
	// handshakes). Default 10 s.
	DialTimeout time.Duration
	// Drain is how long Run lets requests and tunnels finish after the stop signal. Default 10 s;
	// negative: close everything at once.
	Drain time.Duration
	// Refresh is how often the source is polled (the pool's version, the file's identity).
	// Default 2 s.
	Refresh time.Duration
	// MaxConns bounds the inbound connections open at once; past it, new ones wait in the
	// kernel's backlog. Default 4096.
	MaxConns int
	// Observer, if set, is told of every attempt through an upstream (per-upstream metrics).
	// Default: none.
	Observer Observer
	// Log receives the server's logs. Default: discard.
	Log *slog.Logger
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if err := c.Listen.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.SOCKSListen != "" {
		o := c.Listen
		o.Listen = c.SOCKSListen
		if err := o.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--socks-listen: %w", err))
		}
	}
	switch {
	case c.From == "":
		errs = append(errs, errors.New("--from: want pool or a proxy list file"))
	case c.From == FromPool:
		if err := (queue.Config{Database: c.Database}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--database: %w", err))
		}
	}
	switch c.Policy {
	case "", RoundRobin, Random, Fastest:
	default:
		errs = append(errs, fmt.Errorf("--policy %q: want one of %v", c.Policy, Policies()))
	}
	if c.RotateEvery < 0 {
		errs = append(errs, fmt.Errorf("--rotate-every %d: must be at least 1", c.RotateEvery))
	}
	if c.RotateEvery > 1 && c.Policy == Fastest {
		errs = append(errs, errors.New("--rotate-every with --policy fastest: fastest picks per request; use round-robin or random"))
	}
	switch c.Sticky {
	case "", StickySession, StickyClient, StickyOff:
	default:
		errs = append(errs, fmt.Errorf("--sticky %q: want session, client or off", c.Sticky))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--sticky-ttl", c.StickyTTL}, {"--bench-cooldown", c.BenchCooldown}, {"--bench-max", c.BenchMax},
		{"--header-timeout", c.HeaderTimeout}, {"--idle-timeout", c.IdleTimeout}, {"--max-duration", c.MaxDuration},
		{"--dial-timeout", c.DialTimeout}, {"--refresh", c.Refresh}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v: must not be negative", d.name, d.v))
		}
	}
	if c.StickyMax < 0 || c.MaxHeaderBytes < 0 || c.MaxConns < 0 {
		errs = append(errs, errors.New("--sticky-max, --max-header-bytes and --max-conns must not be negative"))
	}
	if h := c.UpstreamHeader; h != "" && !validHeaderName(h) {
		errs = append(errs, fmt.Errorf("--upstream-header %q: not a header name", h))
	}
	return errors.Join(errs...)
}

func validHeaderName(h string) bool {
	if h == "" || http.CanonicalHeaderKey(h) == "" {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	def := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	if c.Policy == "" {
		c.Policy = RoundRobin
	}
	if c.RotateEvery == 0 {
		c.RotateEvery = 1
	}
	if c.Sticky == "" {
		c.Sticky = StickySession
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
	} else if c.Drain < 0 {
		c.Drain = 0
	}
	def(&c.StickyTTL, DefaultStickyTTL)
	def(&c.BenchCooldown, DefaultBenchCooldown)
	def(&c.BenchMax, DefaultBenchMax)
	def(&c.HeaderTimeout, DefaultHeaderTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.MaxDuration, DefaultMaxDuration)
	def(&c.DialTimeout, DefaultDialTimeout)
	def(&c.Refresh, DefaultRefresh)
	if c.StickyMax == 0 {
		c.StickyMax = DefaultStickyMax
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.Database == "" {
		c.Database = queue.DefaultDatabase
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}
