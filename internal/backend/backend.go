// Package backend is the one place where proxyline chooses how proxies are checked: by the
// in-process checker (package check: no subprocess at all, the default) or by an external tool
// run under supervision once per chunk (package external, --exec). `proxyline check` and
// `scrape --check` open a Backend from their flags and check a list (CheckAll) or a stream
// (CheckStream) with it; the queue's worker makes the checker of each job with Jobs. The --exec
// flags (Exec) and the judge flags (check.JudgeConfig) are the same on every command.
//
// A Backend has the lifecycle of every long-lived service (docs/lifecycle.md), with its
// constructor as its Start, as the lab has: Open prepares it (the judge is asked once, or the
// supervisor is started: its start-up sweep, subreaper and layers); Stop(ctx) ends it (the
// supervisor stops the runs still going: their grace while ctx lives, SIGKILL at its end).
package backend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/check/external"
	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/proxy"
)

// ErrConfig is wrapped by every error that is the configuration's fault (bad input: exit 2),
// as opposed to one of the judge or the machine (a runtime error).
var ErrConfig = errors.New("invalid checker configuration")

// Defaults of Config.
const (
	DefaultConcurrency = 100
	DefaultChunk       = 1000
)

// Config configures a Backend. The zero value of each field but Judge means its default.
type Config struct {
	// Judge is the judge. Its URL is required unless an external tool that does not use
	// {judge} checks; a CAFile is loaded by Open.
	Judge check.JudgeConfig
	// Timeout bounds one check (the tool's {timeout}). Default check.DefaultTimeout (10 s).
	Timeout time.Duration
	// Concurrency is how many proxies are checked at once (the tool's {concurrency}). Default
	// DefaultConcurrency.
	Concurrency int
	// Exec selects the external tool; its zero value is the in-process checker.
	Exec Exec
	// Chunk is how many proxies one run of the tool checks. Default DefaultChunk.
	Chunk int
	// Idle is how long CheckStream lets a chunk that is not full wait for more proxies. Default
	// external.DefaultIdle.
	Idle time.Duration
	// Name names the owner of the tool's runs (supervisor cookies, cgroups, logs). Default
	// "check".
	Name string
	// Log receives diagnostics. Default: discard.
	Log *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Timeout = cmp.Or(c.Timeout, check.DefaultTimeout)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.Chunk = cmp.Or(c.Chunk, DefaultChunk)
	c.Idle = cmp.Or(c.Idle, external.DefaultIdle)
	c.Name = cmp.Or(c.Name, "check")
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Backend checks proxies with the backend its Config chose. Its methods may be called from
// several goroutines; Stop once it is no longer used.
type Backend struct {
	life   lifecycle.Once
	cfg    Config
	inproc *check.Checker        // the in-process checker, prepared, or
	ext    *external.Checker     // the external tool,
	sup    *supervise.Supervisor // run under this supervisor
}

// Open validates cfg and prepares the backend: the in-process checker asks the judge once
// (check.Checker.Prepare); the external one gets a started supervisor. Errors wrapping ErrConfig
// are bad input; others (the judge does not answer as configured, the supervisor cannot start)
// are runtime errors.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Exec.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := cfg.Judge.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := cfg.Judge.LoadCA(); err != nil {
		return nil, fmt.Errorf("%w: --judge-ca: %w", ErrConfig, err)
	}
	if cfg.Concurrency < 0 || cfg.Chunk < 0 || cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: negative concurrency, chunk or timeout", ErrConfig)
	}
	if cfg.Exec.Template != "" {
		return openExec(ctx, cfg)
	}
	if cfg.Judge.URL == "" {
		return nil, fmt.Errorf("%w: a judge URL is required", ErrConfig)
	}
	opts, err := cfg.Judge.Options(cfg.Timeout, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c, err := check.New(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.Prepare(ctx); err != nil {
		return nil, fmt.Errorf("judge not usable: %w", err)
	}
	cfg.Log.Debug("judge ready", "judge", cfg.Judge.URL, "real_ip", c.RealIP())
	return started(&Backend{cfg: cfg, inproc: c}), nil
}

// openExec starts a supervisor for the external tool's runs.
func openExec(ctx context.Context, cfg Config) (*Backend, error) {
	sup, err := supervise.New(supervise.Config{Name: cfg.Name, Disable: cfg.Exec.Layers(), Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	ext := cfg.Exec.checker(cfg.Judge.URL, cfg.Timeout, cfg.Concurrency, sup, cfg.Log)
	if err := ext.Validate(); err != nil { // {judge} without a judge
		return nil, fmt.Errorf("%w: --exec: %w", ErrConfig, err)
	}
	if err := sup.Start(ctx); err != nil {
		return nil, fmt.Errorf("start supervisor: %w", err)
	}
	cfg.Log.Info("external checker", "template", cfg.Exec.Template, "layers", sup.Layers().Names())
	return started(&Backend{cfg: cfg, ext: ext, sup: sup}), nil
}

// started marks b started (Open is its Start), so that Stop stops it.
func started(b *Backend) *Backend {
	_ = b.life.Start(func() error { return nil }) // a new Once: it cannot fail
	return b
}

// Name is the backend's name in status and logs: "inprocess" or "exec".
func (b *Backend) Name() string {
	if b.ext != nil {
		return BackendExec
	}
	return BackendInProcess
}

// Backend names (Backend.Name, Jobs.Name), as status shows them.
const (
	BackendInProcess = "inprocess"
	BackendExec      = "exec"
)

// CheckAll checks ps and calls emit with each result, from one goroutine at a time. When ctx is
// canceled no new check starts, and checks in flight end: in-process ones are emitted with class
// canceled, an external run's chunk is not emitted; proxies never started are not emitted. The
// error reports external runs that failed (their chunks are not emitted); the in-process checker
// has none.
func (b *Backend) CheckAll(ctx context.Context, ps []proxy.Proxy, emit func(check.Result)) error {
	if b.ext != nil {
		return b.ext.CheckAll(ctx, ps, b.cfg.Chunk, func(_ proxy.Proxy, r check.Result) { emit(r) })
	}
	b.inproc.CheckAll(ctx, ps, b.cfg.Concurrency, emit)
	return nil
}

// CheckStream checks the proxies that arrive on in, as they come, until in is closed (the
// sender must close it), and calls emit with each proxy as given and its result, from one
// goroutine at a time. The external tool runs a chunk when it is full, when in is closed, or
// after Config.Idle without a new proxy. After ctx is canceled what still arrives is dropped;
// cancellation and errors are as for CheckAll.
func (b *Backend) CheckStream(ctx context.Context, in <-chan proxy.Proxy, emit func(given proxy.Proxy, r check.Result)) error {
	if b.ext != nil {
		return b.ext.CheckStream(ctx, in, b.cfg.Chunk, b.cfg.Idle, emit)
	}
	b.inproc.CheckStream(ctx, in, b.cfg.Concurrency, emit)
	return nil
}

// Stop releases the backend and returns once nothing of it runs. It is idempotent and safe to
// call from several goroutines (docs/lifecycle.md). The in-process checker holds nothing: its
// Stop returns nil at once (checks still in flight end with their own contexts).
//
// Shutdown order (the external tool): the supervisor's (supervise.Supervisor.Stop):
//  1. refuse: no new run of the tool starts (a CheckAll or CheckStream still going gets errors);
//  2. drain: runs still going get SIGTERM and their grace period while ctx lives;
//  3. cut (ctx ended first): SIGKILL at once;
//  4. wait and release: every run's processes, cgroup and files are gone, then the supervisor's
//     cgroup; bound after the cut: milliseconds, 5 s per clean-up step for a process stuck in D
//     state;
//  5. error: the supervisor's (runs the cut killed, wrapping ctx's cause; what did not end).
func (b *Backend) Stop(ctx context.Context) error {
	return b.life.Stop(ctx, b.stop)
}

func (b *Backend) stop(cut context.Context) error {
	if b.sup == nil {
		return nil
	}
	if err := b.sup.Stop(cut); err != nil {
		return fmt.Errorf("stop checker backend: %w", err)
	}
	return nil
}
