package cli

import (
	"context"
	"errors"
	"runtime/debug"
	"time"

	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/rotate"
	"github.com/proxyline/proxyline/internal/serve"
)

// serveOptions are the flags of proxyline serve: the rotator's Config, plus the two flags whose
// "none" (0) differs from the Config's zero value ("default").
type serveOptions struct {
	cfg     rotate.Config
	db      queue.DatabaseFlag // --database, for --from pool
	retries int
	drain   time.Duration
}

// Validate checks the flags and fills the Config.
func (o *serveOptions) Validate() error {
	if o.retries < 0 || o.drain < 0 {
		return usageError("--retries and --drain must not be negative")
	}
	o.cfg.Retries, o.cfg.Drain = o.retries, o.drain
	o.cfg.Database = o.db.Database
	if o.retries == 0 {
		o.cfg.Retries = -1 // none
	}
	if o.drain == 0 {
		o.cfg.Drain = -1 // close at once
	}
	if err := o.cfg.Validate(); err != nil {
		return usageError("%w", err)
	}
	return nil
}

func serveCommand() command {
	return command{
		Name:    "serve",
		Summary: "run the rotating proxy server: one local address, a different live proxy behind each request",
		Run:     runServe,
	}
}

func runServe(ctx context.Context, env *Env, args []string) error {
	o := &serveOptions{}
	c := &o.cfg
	fs := newFlagSet("serve", "[flags]",
		"Serves HTTP (absolute-URI requests), CONNECT and SOCKS5 on one address (and SOCKS5 alone on\n"+
			"--socks-listen), sending each request through an upstream proxy from the pool's live\n"+
			"proxies or from a list file, which is watched. Logs \"rotator ready\" when serving. The first\n"+
			"SIGINT/SIGTERM drains for --drain, the second stops at once. See docs/rotate.md.")
	c.Listen.Register(fs, "127.0.0.1:8089")
	fs.StringVar(&c.SOCKSListen, "socks-listen", "", "`address` of a second listener for SOCKS5 only (same rule and credentials as --listen)")
	fs.StringVar(&c.From, "from", rotate.FromPool, "where the upstreams come from: pool (the pool's live proxies) or the `path` of a proxy list (watched)")
	o.db.Register(fs)
	fs.StringVar((*string)(&c.Policy), "policy", string(rotate.RoundRobin), "upstream choice: round-robin, random or fastest (moving average of latency)")
	fs.IntVar(&c.RotateEvery, "rotate-every", 1, "send `N` requests in a row through one upstream before moving on (round-robin, random)")
	fs.StringVar((*string)(&c.Sticky), "sticky", string(rotate.StickySession), "bind to one upstream: session (user name USER-session-NAME), client (client IP; a session name wins) or off")
	fs.DurationVar(&c.StickyTTL, "sticky-ttl", rotate.DefaultStickyTTL, "lifetime of a sticky binding, from its creation")
	fs.IntVar(&c.StickyMax, "sticky-max", rotate.DefaultStickyMax, "most sticky bindings kept (least recently used dropped first)")
	fs.IntVar(&o.retries, "retries", rotate.DefaultRetries, "other upstreams a request may try after a failure (0: none)")
	fs.DurationVar(&c.BenchCooldown, "bench-cooldown", rotate.DefaultBenchCooldown, "how long a failed upstream is left out (doubles while it keeps failing)")
	fs.DurationVar(&c.BenchMax, "bench-max", rotate.DefaultBenchMax, "longest bench")
	fs.StringVar(&c.UpstreamHeader, "upstream-header", "", "response header `name` naming the upstream used (off when empty)")
	fs.StringVar(&c.UpstreamCA, "upstream-ca", "", "PEM `file` of roots for https:// upstreams (default: the system roots)")
	fs.DurationVar(&c.HeaderTimeout, "header-timeout", rotate.DefaultHeaderTimeout, "time to read a request head or a SOCKS5 handshake")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", rotate.DefaultMaxHeaderBytes, "largest request head")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", rotate.DefaultIdleTimeout, "close keep-alive connections and tunnels idle this long")
	fs.DurationVar(&c.MaxDuration, "max-duration", rotate.DefaultMaxDuration, "longest request (to its last byte) or tunnel")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", rotate.DefaultDialTimeout, "time to reach the target through one upstream")
	fs.IntVar(&c.MaxConns, "max-conns", rotate.DefaultMaxConns, "inbound connections open at once (more wait in the backlog)")
	fs.DurationVar(&o.drain, "drain", rotate.DefaultDrain, "on SIGTERM, time for requests and tunnels in flight to finish (0: cut them at once)")
	fs.DurationVar(&c.Refresh, "refresh", rotate.DefaultRefresh, "how often the pool or the list file is looked at for changes")
	if err := parseOptions(fs, env, args, o); err != nil {
		return err
	}
	c.Log = env.Log
	defer tuneGC(env.Getenv)()
	err := rotate.Run(ctx, *c, env.Force)
	if errors.Is(err, serve.ErrRefused) {
		return usageError("%w", err)
	}
	return err
}

// The serve process's garbage collector, unless GOGC or GOMEMLIMIT say otherwise. The rotator's
// live heap is a few MB and it allocates about 8 KB per forwarded request: at Go's GOGC=100 it
// collected every 256 requests and the collector took 25-28 us of CPU per request, against
// 4-6 us at 400 (BenchmarkForward's gc-cpu-us/op, docs/benchmarks.md); on a machine shared
// with its clients that CPU, and the assists, show in the tail latency. The soft limit keeps a
// large live heap (thousands of tunnels) from growing to 5x under GOGC=400.
const (
	serveGCPercent   = 400
	serveMemoryLimit = 256 << 20
)

// tuneGC applies serveGCPercent and serveMemoryLimit where the Go runtime's own variables are
// not set, and returns what restores the previous settings (serve also runs inside tests).
func tuneGC(getenv func(string) string) (restore func()) {
	pct, limit := 0, int64(-1)
	setPct, setLimit := getenv("GOGC") == "", getenv("GOMEMLIMIT") == ""
	if setPct {
		pct = debug.SetGCPercent(serveGCPercent)
	}
	if setLimit {
		limit = debug.SetMemoryLimit(serveMemoryLimit)
	}
	return func() {
		if setPct {
			debug.SetGCPercent(pct)
		}
		if setLimit {
			debug.SetMemoryLimit(limit)
		}
	}
}
