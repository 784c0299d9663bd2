package run

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/metrics"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/scrape"
	"github.com/proxyline/proxyline/internal/scrape/fetch"
	"github.com/proxyline/proxyline/proxy"
)

// scrapeLoop fetches the sources every interval and schedules what they name as new candidates
// (with the sightings, for the per-source yield); after each round it also adopts pool proxies
// that have no schedule yet (enqueued through the API or by `proxyline enqueue`).
type scrapeLoop struct {
	settings scrape.Config
	sources  []scrape.Source
	interval time.Duration
	check    CheckConfig
	backoff  pool.Backoff
	store    *queue.Store
	metrics  *metrics.Metrics
	log      *slog.Logger

	life    lifecycle.Once
	fetcher *fetch.Fetcher
	stop    chan struct{} // closed by Stop
	done    chan struct{} // closed when the loop returned
	work    context.CancelFunc
}

func newScrapeLoop(c Config, store *queue.Store, m *metrics.Metrics, b pool.Backoff, log *slog.Logger) *scrapeLoop {
	return &scrapeLoop{settings: c.Scrape, sources: c.Scrape.Enabled(), interval: c.Schedule.ScrapeInterval.D(),
		check: c.Check, backoff: b, store: store, metrics: m, log: log, stop: make(chan struct{}), done: make(chan struct{})}
}

func (s *scrapeLoop) Start(ctx context.Context) error {
	return s.life.Start(func() error {
		s.fetcher = fetch.New(s.settings.FetchConfig(s.log))
		work, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.work = cancel
		go s.loop(work)
		return nil
	})
}

// Stop stops scraping.
//
// Shutdown order:
//  1. refuse: no new round, no new source;
//  2. drain: none (a round's candidates are worth less than a prompt stop; the next start
//     fetches again);
//  3. cut: at once, fetches in flight are cancelled;
//  4. wait: for the round's goroutines (they return at once) and the candidates' transaction
//     (bounded by ctx); then close the fetcher's connections;
//  5. error: nil, or ctx's cause when the wait for the transaction was cut.
func (s *scrapeLoop) Stop(ctx context.Context) error {
	return s.life.Stop(ctx, func(cut context.Context) error {
		close(s.stop)
		var err error
		select {
		case <-s.done:
		case <-cut.Done():
			err = fmt.Errorf("scrape: stop cut short: %w", context.Cause(cut))
		}
		s.work()
		<-s.done
		s.fetcher.Close()
		return err
	})
}

func (s *scrapeLoop) loop(ctx context.Context) {
	defer close(s.done)
	for {
		if len(s.sources) > 0 {
			s.round(ctx)
		}
		select {
		case <-s.stop:
			return
		default:
		}
		if n, err := pool.AdoptPool(ctx, s.store.DB(), s.backoff); err != nil && ctx.Err() == nil {
			s.log.Warn("adopt pool proxies into the schedule", "err", err)
		} else if n > 0 {
			s.log.Info("pool proxies without a schedule adopted", "proxies", n)
		}
		t := time.NewTimer(s.interval)
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// round fetches every source once and schedules the candidates.
func (s *scrapeLoop) round(ctx context.Context) {
	start := time.Now()
	sc := scrape.NewScraper(scrape.ScraperConfig{Sources: s.sources, Settings: s.settings, Fetcher: s.fetcher, Log: s.log,
		OnSource: func(st scrape.SourceStats) { s.metrics.ObserveSource(st.Name, st.State, st.Bytes, st.Parsed) }})
	if err := sc.Start(ctx); err != nil {
		s.log.Warn("scrape", "err", err)
		return
	}
	select {
	case <-sc.Done():
	case <-s.stop:
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_ = sc.Stop(cancelled)
		return
	}
	found := sc.Found()
	var ps []proxy.Proxy
	var seen []pool.Sighting
	now := time.Now()
	for _, c := range found {
		if !s.check.wantsProtocol(string(c.Proxy.Scheme)) {
			continue
		}
		ps = append(ps, c.Proxy)
		for _, i := range c.Sources {
			seen = append(seen, pool.Sighting{Source: s.sources[i].Label(), Proxy: c.Proxy, Seen: now})
		}
	}
	var added int64
	err := s.store.InTx(ctx, func(db pool.DB) error {
		var err error
		if added, err = pool.ScheduleCandidates(ctx, db, ps); err != nil {
			return err
		}
		return pool.RecordSightings(ctx, db, seen)
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("schedule scraped candidates", "err", err)
		}
		return
	}
	s.log.Info("scraped", "sources", len(s.sources), "candidates", len(ps), "new", added,
		"took", time.Since(start).Round(time.Millisecond))
}
