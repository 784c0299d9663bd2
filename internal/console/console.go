// Package console is proxyline's operator surface over one queue database, as one http.Handler:
// the web UI at / (internal/web), the JSON API at /api/v1/ (internal/api), Prometheus metrics at
// /metrics (internal/metrics) and River's own UI for jobs at /riverui/. `proxyline ui` serves it;
// `proxyline run` mounts the same handler. Whoever serves it puts it behind internal/serve's gate
// (loopback by default, credentials elsewhere; DNS rebinding and cross-origin writes refused).
//
// A Console has the lifecycle of every long-lived service (docs/lifecycle.md): Start starts River
// UI's background work, Stop ends it. The handler answers before Start (River UI then says 503).
package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/proxyline/proxyline/internal/api"
	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/metrics"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/web"
)

// RiverUIPrefix is where River UI is mounted.
const RiverUIPrefix = "/riverui"

// Config configures a Console. Zero values mean the defaults named in each field's doc.
type Config struct {
	// Store is the queue's database. Required.
	Store *queue.Store
	// Logger receives the parts' errors. Default: discard.
	Logger *slog.Logger
	// Metrics is the process's registry, whose Handler serves /metrics. Default: a new one
	// with the store's gauges (a process that checks, scrapes or rotates passes its own, so
	// that /metrics shows that work too).
	Metrics *metrics.Metrics
	// API configures the JSON API beyond its Store and Logger (caps, timeouts).
	API api.Config
	// NoRiverUI leaves River UI out (/riverui/ answers 404).
	NoRiverUI bool
}

// Console is the composed handler.
type Console struct {
	cfg    Config
	mux    *http.ServeMux
	log    *slog.Logger
	life   lifecycle.Once
	mu     sync.Mutex
	ui     http.Handler       // guarded by mu; River UI once started
	cancel context.CancelFunc // guarded by mu; ends River UI's background work
}

// New builds the console's handlers. It touches nothing beyond reading the templates.
func New(cfg Config) (*Console, error) {
	if cfg.Store == nil {
		return nil, errors.New("console: Config.Store is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		m, err := metrics.New(metrics.Config{Store: cfg.Store, Logger: log})
		if err != nil {
			return nil, err
		}
		cfg.Metrics = m
	}
	apiCfg := cfg.API
	apiCfg.Store, apiCfg.Logger = cfg.Store, log
	a, err := api.New(apiCfg)
	if err != nil {
		return nil, err
	}
	w, err := web.New(web.Config{Store: cfg.Store, Logger: log, Now: apiCfg.Now})
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, mux: http.NewServeMux(), log: log}
	c.mux.Handle("/api/", a)
	c.mux.Handle("GET /metrics", cfg.Metrics.Handler())
	c.mux.HandleFunc(RiverUIPrefix+"/", c.riverUI)
	c.mux.HandleFunc(RiverUIPrefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, RiverUIPrefix+"/", http.StatusMovedPermanently)
	})
	c.mux.Handle("/", w)
	return c, nil
}

// Handler returns the console: /, /proxy/{addr}, /sources, /queue, /workers, /static/,
// /api/v1/..., /metrics, /riverui/.
func (c *Console) Handler() http.Handler { return c.mux }

// Metrics returns the registry /metrics serves.
func (c *Console) Metrics() *metrics.Metrics { return c.cfg.Metrics }

// Start starts River UI (unless Config.NoRiverUI) and returns once it answers. ctx bounds the
// start-up only: only Stop ends it. A second Start returns lifecycle.ErrStarted, a Start after
// Stop lifecycle.ErrStopped.
func (c *Console) Start(ctx context.Context) error {
	return c.life.Start(func() error { return c.start(ctx) })
}

func (c *Console) start(ctx context.Context) error {
	if c.cfg.NoRiverUI {
		return nil
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ui, err := c.cfg.Store.UI(bg, RiverUIPrefix)
	if err != nil {
		cancel()
		return fmt.Errorf("console: %w", err)
	}
	if err := ctx.Err(); err != nil {
		cancel()
		return fmt.Errorf("console: start: %w", err)
	}
	c.mu.Lock()
	c.ui, c.cancel = ui, cancel
	c.mu.Unlock()
	return nil
}

// Stop ends River UI's background work; /riverui/ answers 503 from then on. It is idempotent,
// safe without Start, and safe to call from several goroutines (docs/lifecycle.md).
//
// Shutdown order: River UI is taken out of the handler (refuse), its background work is cancelled
// at once (nothing to drain) and Stop returns (River UI's own goroutines end with their
// context). The other parts hold nothing to stop: the server that serves the handler drains its
// requests (http.Server's Shutdown) before or after, as it likes. Error: none.
func (c *Console) Stop(ctx context.Context) error {
	return c.life.Stop(ctx, func(context.Context) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.cancel != nil { // nil with NoRiverUI
			c.cancel()
		}
		c.ui, c.cancel = nil, nil
		return nil
	})
}

func (c *Console) riverUI(w http.ResponseWriter, r *http.Request) {
	if c.cfg.NoRiverUI {
		http.NotFound(w, r)
		return
	}
	c.mu.Lock()
	ui := c.ui
	c.mu.Unlock()
	if ui == nil {
		http.Error(w, "River UI is not running", http.StatusServiceUnavailable)
		return
	}
	ui.ServeHTTP(w, r)
}
