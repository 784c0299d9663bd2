package scrape

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/scrape/fetch"
	"github.com/proxyline/proxyline/internal/scrape/geo"
)

// usage marks err as the user's mistake.
func usage(err error) error { return fmt.Errorf("%w: %w", ErrUsage, err) }

// Run is the scrape command: it reads the configuration, fetches every source and writes,
// checks or enqueues the candidates, then prints per-source statistics on stderr. ctx is
// canceled by the first signal (drain within the grace period, write what was found, return
// nil); io.Force is closed by the second (return at once, leaving no partial output file).
func Run(ctx context.Context, io IO, o Options) (err error) {
	if o.PrintConfig {
		_, err := io.Stdout.Write(DefaultConfig())
		return err
	}
	if err := o.Validate(); err != nil {
		return usage(err)
	}
	cfg, sources, err := o.settings(io)
	if err != nil {
		return err
	}
	r := &runner{o: o, io: io, cfg: cfg, sources: sources, unsafe: o.KnownBad == BadNoAtomicWrite}
	for _, s := range sources {
		r.names = append(r.names, s.Label())
	}
	if err := r.open(ctx); err != nil {
		r.abort()
		return errors.Join(err, r.close())
	}
	defer func() { err = errors.Join(err, r.close()) }()
	return r.run(ctx)
}

// settings merges the configuration (file, arguments or the defaults) with the flags.
func (o *Options) settings(io IO) (Config, []Source, error) {
	var cfg Config
	var err error
	switch {
	case o.Config != "":
		if cfg, err = LoadConfig(o.Config); err != nil {
			return cfg, nil, usage(err)
		}
	case len(o.Args) > 0:
		cfg, _ = parseConfig(nil, "defaults.toml", false)
		for _, a := range o.Args {
			cfg.Sources = append(cfg.Sources, SourceFromArg(a))
		}
		if err := cfg.validate("arguments"); err != nil {
			return cfg, nil, usage(err)
		}
	default:
		cfg = DefaultSources()
		io.Log.Info("no --config and no source given: fetching the default public sources", "sources", len(cfg.Sources))
	}
	cfg.Concurrency = cmp.Or(o.Fetchers, cfg.Concurrency)
	cfg.Timeout = cmp.Or(Duration(o.SourceTimeout), cfg.Timeout)
	if o.Retries >= 0 {
		cfg.Retries = o.Retries
	}
	if o.CIDRCap >= 0 {
		cfg.CIDRCap = o.CIDRCap
	}
	if o.MaxSize != "" {
		n, _ := ParseSize(o.MaxSize)
		cfg.MaxSize = Size(n)
	}
	cfg.Proxy = cmp.Or(o.Upstream, cfg.Proxy)
	cfg.Hostnames = cfg.Hostnames || o.Hostnames
	var sources []Source
	for _, s := range cfg.Sources {
		if s.enabled() {
			sources = append(sources, s)
		}
	}
	if len(sources) == 0 {
		return cfg, nil, usage(errors.New("no enabled source"))
	}
	return cfg, sources, nil
}

// runner is one run of Run.
type runner struct {
	o       Options
	io      IO
	cfg     Config
	sources []Source
	names   []string
	unsafe  bool

	geo     *geo.DB
	fetcher *fetch.Fetcher
	sc      *Scraper
	backend *backend.Backend // with --check
	cs      *checkStream
	out     *sink
	cw      *candidateWriter
	rw      *check.ResultWriter
	dir     *outDir
	bar     *progressbar.ProgressBar

	sourcesDone atomic.Int64
	closeOnce   sync.Once
	closeErr    error      // release's result
	mu          sync.Mutex // guards the rest
	checked     int
	live        int
	writeErr    error
}

// open prepares everything that can fail before the first fetch: databases, the judge, the
// external checker's supervisor, the output files.
func (r *runner) open(ctx context.Context) error {
	o := r.o
	var err error
	if o.GeoIPDB != "" || o.ASNDB != "" {
		if r.geo, err = geo.Open(o.GeoIPDB, o.ASNDB); err != nil {
			return usage(err)
		}
	}
	if err := r.openChecker(ctx); err != nil {
		return err
	}
	fcfg := fetch.Config{MaxSize: int64(r.cfg.MaxSize), Retries: r.cfg.Retries, Backoff: time.Duration(r.cfg.Backoff),
		BackoffMax: time.Duration(r.cfg.BackoffMax), MaxRedirects: r.cfg.MaxRedirects, UserAgent: r.cfg.UserAgent, Log: r.io.Log}
	if fcfg.Retries == 0 {
		fcfg.Retries = -1
	}
	if fcfg.MaxRedirects == 0 {
		fcfg.MaxRedirects = -1
	}
	if r.cfg.Proxy != "" {
		fcfg.Proxy, _ = ParseUpstream(r.cfg.Proxy)
	}
	if !o.NoCache {
		fcfg.Cache = r.cache()
	}
	r.fetcher = fetch.New(fcfg)
	r.sc = NewScraper(ScraperConfig{Sources: r.sources, Settings: r.cfg, Fetcher: r.fetcher, Cache: fcfg.Cache,
		Log: r.io.Log, OnSource: r.sourceDone})
	if r.out, err = openSink(o.Output, r.io.Stdout, r.unsafe); err != nil {
		return err
	}
	if o.Check {
		if r.rw, err = check.NewResultWriter(r.out.w, o.Format, o.All, extraKeys(r.geo != nil)...); err != nil {
			return usage(err)
		}
	} else {
		r.cw = newCandidateWriter(r.out.w, o.Format, r.geo != nil)
	}
	if o.OutDir != "" {
		var swept []string
		if r.dir, swept, err = openOutDir(o.OutDir, r.unsafe); err != nil {
			return err
		}
		if len(swept) > 0 {
			r.io.Log.Info("removed temporary files of an earlier run that was killed", "dir", o.OutDir, "files", swept)
		}
	}
	if r.io.Terminal {
		r.bar = progressbar.NewOptions(len(r.sources), progressbar.OptionSetWriter(r.io.Stderr),
			progressbar.OptionSetDescription("sources"), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	return nil
}

// cache returns the conditional-GET cache, or nil if no directory can be had.
func (r *runner) cache() *fetch.Cache {
	dir := r.o.CacheDir
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			r.io.Log.Debug("no cache directory; conditional GETs off", "err", err)
			return nil
		}
		dir = filepath.Join(base, "proxyline", "scrape")
	}
	return &fetch.Cache{Dir: dir}
}

// openChecker opens the checker backend for --check: the in-process checker (the judge is
// asked once), or the external tool under a supervisor of its own. For --enqueue it reads the
// CA the jobs will carry now, not after every source was fetched.
func (r *runner) openChecker(ctx context.Context) error {
	o := r.o
	if o.Enqueue {
		if err := r.o.Judge.LoadCA(); err != nil {
			return usage(fmt.Errorf("--judge-ca: %w", err))
		}
	}
	if !o.Check {
		return nil
	}
	b, err := backend.Open(ctx, backend.Config{Judge: o.Judge, Timeout: o.Timeout, Concurrency: o.Concurrency,
		Exec: o.Exec, Chunk: o.Chunk, Idle: checkIdle, Name: "scrape", Log: r.io.Log})
	if errors.Is(err, backend.ErrConfig) {
		return usage(err)
	} else if err != nil {
		return err
	}
	r.backend = b
	return nil
}

// close releases what open took (after a run or an abort) and returns what could not be
// released; it may be called more than once.
//
// Shutdown order: the checks (they read the scraper's stream), then the scraper, then the
// checker backend (no check runs any more: its supervisor has no run left to stop), then the
// fetcher and the geo databases. The second signal cuts each stop. A cut of the checks or of
// the scraper is no error of the run (the first signal's grace period ends that way; the
// statistics show the sources abandoned): only the backend's stop error is returned.
func (r *runner) close() error {
	r.closeOnce.Do(func() { r.closeErr = r.release() })
	return r.closeErr
}

func (r *runner) release() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.io.Force:
			cancel()
		case <-ctx.Done():
		}
	}()
	if r.cs != nil {
		_ = r.cs.Stop(ctx) // done already, or cut by the grace period or the second signal
	}
	if r.sc != nil {
		_ = r.sc.Stop(ctx)
	}
	var err error
	if r.backend != nil {
		err = r.backend.Stop(ctx)
	}
	if r.fetcher != nil {
		r.fetcher.Close()
	}
	if r.geo != nil {
		_ = r.geo.Close()
	}
	return err
}

// abort drops every output file (none appears) and releases everything.
func (r *runner) abort() {
	if r.out != nil {
		r.out.abort()
	}
	if r.dir != nil {
		r.dir.abort()
	}
	r.close()
}
