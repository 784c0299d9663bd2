package scrape

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/scrape/extract"
	"github.com/proxyline/proxyline/internal/scrape/fetch"
	"github.com/proxyline/proxyline/proxy"
)

// Candidate is a proxy found by the scraper, with the sources that named it (indexes into the
// Scraper's sources; the first is the one that named it first).
type Candidate struct {
	Proxy   proxy.Proxy
	Sources []int
}

// ScraperConfig configures a Scraper.
type ScraperConfig struct {
	Sources  []Source
	Settings Config // concurrency, timeout, CIDR cap, host names (Sources is ignored)
	Fetcher  *fetch.Fetcher
	Cache    *fetch.Cache // nil: no conditional GETs
	Log      *slog.Logger
	// OnSource, if set, is called as each source ends, with its statistics (from the source's
	// goroutine).
	OnSource func(SourceStats)
}

// Scraper fetches its sources, at most Settings.Concurrency at a time, and streams every new
// candidate (Candidates) as it is found. One failing source never stops the others. It has the
// lifecycle of every long-lived service (docs/lifecycle.md); it also ends by itself once every
// source has ended (Done), and Stop then returns nil at once.
type Scraper struct {
	life  lifecycle.Once
	cfg   ScraperConfig
	out   *stream
	col   *collector
	stats []SourceStats // guarded by mu
	mu    sync.Mutex

	stopLaunch chan struct{}      // closed by Stop: start no new source
	cancelWork context.CancelFunc // cancels fetches in flight
	wg         sync.WaitGroup
	done       chan struct{} // closed when every started source has ended
}

// NewScraper returns a Scraper; Start starts it.
func NewScraper(cfg ScraperConfig) *Scraper {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Scraper{cfg: cfg, out: newStream(), col: newCollector(), stopLaunch: make(chan struct{}), done: make(chan struct{})}
	s.stats = make([]SourceStats, len(cfg.Sources))
	for i, src := range cfg.Sources {
		s.stats[i] = SourceStats{Name: src.Label(), State: StatePending}
	}
	return s
}

// Start launches the fetches and returns at once. The fetches do not end with ctx's
// cancellation (that is Stop's job, with a grace period) but keep its values. A second Start
// returns lifecycle.ErrStarted, a Start after Stop lifecycle.ErrStopped.
func (s *Scraper) Start(ctx context.Context) error {
	return s.life.Start(func() error { s.start(ctx); return nil })
}

func (s *Scraper) start(ctx context.Context) {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancelWork = cancel
	sem := make(chan struct{}, max(s.cfg.Settings.Concurrency, 1))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for i := range s.cfg.Sources {
			select {
			case sem <- struct{}{}:
			case <-s.stopLaunch:
				return
			}
			select {
			case <-s.stopLaunch:
				return
			default:
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { <-sem }()
				s.source(work, i)
			}()
		}
	}()
	go func() {
		s.wg.Wait()
		s.out.close()
		cancel()
		close(s.done)
	}()
}

// Done is closed when every source has ended (or was never started after Stop).
func (s *Scraper) Done() <-chan struct{} { return s.done }

// Candidates is the stream of new candidates; it ends when Done is closed.
func (s *Scraper) Candidates() *stream { return s.out }

// Stop stops the scraper and returns once every fetch has ended. It is idempotent, safe without
// Start, and safe to call from several goroutines (docs/lifecycle.md).
//
// Shutdown order:
//  1. refuse: no new source is started (those not started stay pending);
//  2. drain: fetches in flight may finish while ctx lives;
//  3. cut (ctx ended first): fetches in flight are cancelled (their sources end abandoned);
//  4. wait: every fetch goroutine returns, then the candidate stream closes; bound after the cut:
//     milliseconds (a cancelled fetch returns at once);
//  5. error: fetches the cut abandoned (wrapping ctx's cause); nil when none was in flight.
func (s *Scraper) Stop(ctx context.Context) error {
	return s.life.Stop(ctx, s.stop)
}

func (s *Scraper) stop(cut context.Context) error {
	close(s.stopLaunch)
	select {
	case <-s.done:
		return nil
	case <-cut.Done():
	}
	select {
	case <-s.done: // ended together with the cut: nothing was cut
		return nil
	default:
	}
	abandoned := s.running()
	s.cancelWork()
	<-s.done
	return fmt.Errorf("scraper: stop cut short, %d fetch(es) in flight abandoned: %w", abandoned, context.Cause(cut))
}

// running returns how many sources are being fetched.
func (s *Scraper) running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.stats {
		if st.State == StateRunning {
			n++
		}
	}
	return n
}

// Stats returns a copy of every source's statistics, in the sources' order.
func (s *Scraper) Stats() []SourceStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SourceStats(nil), s.stats...)
}

// SourcesOf returns the sources that named p so far.
func (s *Scraper) SourcesOf(p proxy.Proxy) []int { return s.col.sourcesOf(p) }

// Found returns every candidate found so far, in the order found.
func (s *Scraper) Found() []Candidate { return s.col.all() }

// source fetches and extracts one source, recording its statistics.
func (s *Scraper) source(ctx context.Context, i int) {
	src := s.cfg.Sources[i]
	st := SourceStats{Name: src.Label(), State: StateRunning, Started: time.Now()}
	s.setStats(i, st)
	timeout := time.Duration(src.Timeout)
	if timeout <= 0 {
		timeout = time.Duration(s.cfg.Settings.Timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	emit := func(p proxy.Proxy) {
		st.Parsed++
		if c, isNew := s.col.add(p, i); isNew {
			st.New++
			s.out.push(c)
		} else {
			st.Duplicates++
		}
	}
	err := s.fetchInto(ctx, src, &st, emit)
	st.Took = time.Since(st.Started)
	switch {
	case err == nil:
		st.State = StateOK
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		st.State, st.Err = StateFailed, fmt.Sprintf("timed out after %v (timeout): %v", timeout, err)
	case errors.Is(err, context.Canceled):
		st.State, st.Err = StateAbandoned, "abandoned: the run was stopped"
	default:
		st.State, st.Err = StateFailed, err.Error()
	}
	if err != nil && st.Parsed > 0 && st.State == StateFailed {
		st.State = StatePartial
	}
	s.setStats(i, st)
	if s.cfg.OnSource != nil {
		s.cfg.OnSource(st)
	}
}

func (s *Scraper) setStats(i int, st SourceStats) {
	s.mu.Lock()
	live := s.stats[i].Live
	s.stats[i] = st
	s.stats[i].Live = live
	s.mu.Unlock()
}

// AddLive counts a live proxy for each source that named it.
func (s *Scraper) AddLive(sources []int) {
	s.mu.Lock()
	for _, i := range sources {
		s.stats[i].Live++
	}
	s.mu.Unlock()
}

// fetchInto gets the source's body (or its cached candidates) and extracts them into emit.
func (s *Scraper) fetchInto(ctx context.Context, src Source, st *SourceStats, emit func(proxy.Proxy)) error {
	format, _ := extract.ParseFormat(src.Format)
	opts := extract.Options{Scheme: src.scheme(), CIDRCap: s.cfg.Settings.CIDRCap, Hostnames: s.cfg.Settings.Hostnames,
		JSONPath: src.JSONPath}
	if s.cfg.Settings.CIDRCap == 0 {
		opts.CIDRCap = -1
	}
	if src.File != "" {
		b, err := readFile(ctx, src.File, int64(s.cfg.Settings.MaxSize))
		if err != nil {
			return err
		}
		st.Bytes = int64(len(b))
		f, err := extract.Body(b, "", format, opts, emit)
		st.Format = string(f)
		return err
	}
	req := fetch.Request{URL: src.URL, Header: src.Headers}
	if src.BasicAuth != nil {
		req.User, req.Password = src.BasicAuth.User, src.BasicAuth.Password
	}
	resp, err := s.cfg.Fetcher.Get(ctx, req)
	if err != nil {
		return err
	}
	st.Attempts = resp.Attempts
	if resp.NotModified {
		st.NotModified = true
		for _, line := range resp.Cached.Candidates {
			if p, err := proxy.Parse(line); err == nil {
				emit(p)
			}
		}
		return nil
	}
	st.Bytes = int64(len(resp.Body))
	var found []string
	keep := func(p proxy.Proxy) {
		if s.cfg.Cache != nil && (resp.ETag != "" || resp.LastModified != "") {
			found = append(found, p.String())
		}
		emit(p)
	}
	f, err := extract.Body(resp.Body, resp.ContentType, format, opts, keep)
	st.Format = string(f)
	if err == nil && s.cfg.Cache != nil {
		if cerr := s.cfg.Cache.Store(req, fetch.Entry{ETag: resp.ETag, LastModified: resp.LastModified,
			Candidates: found, Stored: time.Now().UTC()}); cerr != nil {
			s.cfg.Log.Warn("cache not written", "source", src.Label(), "err", cerr)
		}
	}
	return err
}

// readFile reads a local source, capped like a body.
func readFile(ctx context.Context, path string, maxSize int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return fetch.ReadCapped(f, maxSize)
}

// collector removes duplicates across sources and remembers every source that named each
// candidate. Safe for concurrent use.
type collector struct {
	mu    sync.Mutex
	index map[proxy.Proxy]int // guarded by mu: position in found
	found []Candidate         // guarded by mu
}

func newCollector() *collector { return &collector{index: map[proxy.Proxy]int{}} }

// add records that source i named p; it returns the candidate and whether p is new.
func (c *collector) add(p proxy.Proxy, i int) (Candidate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.index[p]; ok {
		srcs := c.found[k].Sources
		for _, j := range srcs {
			if j == i {
				return c.found[k], false
			}
		}
		c.found[k].Sources = append(srcs, i)
		return c.found[k], false
	}
	c.index[p] = len(c.found)
	cand := Candidate{Proxy: p, Sources: []int{i}}
	c.found = append(c.found, cand)
	return cand, true
}

func (c *collector) sourcesOf(p proxy.Proxy) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.index[p]; ok {
		return append([]int(nil), c.found[k].Sources...)
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.found)
}

func (c *collector) all() []Candidate {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Candidate, len(c.found))
	for i, f := range c.found {
		out[i] = Candidate{Proxy: f.Proxy, Sources: append([]int(nil), f.Sources...)}
	}
	return out
}

// stream is an unbounded queue of candidates from the fetchers to a consumer, so that a slow
// checker never holds a fetch back. Safe for concurrent use.
type stream struct {
	mu     sync.Mutex
	items  []Candidate   // guarded by mu
	closed bool          // guarded by mu
	ready  chan struct{} // one token: something was pushed, or the stream closed
}

func newStream() *stream { return &stream{ready: make(chan struct{}, 1)} }

func (s *stream) push(c Candidate) {
	s.mu.Lock()
	s.items = append(s.items, c)
	s.mu.Unlock()
	s.signal()
}

func (s *stream) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
}

func (s *stream) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// next returns the next candidate, waiting for one; false when the stream is closed and empty
// or stop is closed first.
func (s *stream) next(stop <-chan struct{}) (Candidate, bool) {
	for {
		s.mu.Lock()
		if len(s.items) > 0 {
			c := s.items[0]
			s.items[0] = Candidate{}
			s.items = s.items[1:]
			more := len(s.items) > 0 || s.closed
			s.mu.Unlock()
			if more {
				s.signal() // wake another consumer
			}
			return c, true
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			s.signal()
			return Candidate{}, false
		}
		select {
		case <-s.ready:
		case <-stop:
			return Candidate{}, false
		}
	}
}
