package scrape

import (
	"context"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/lifecycle/lifecycletest"
	"github.com/proxyline/proxyline/internal/scrape/fetch"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// TestScraperLifecycle: the scraper's lifecycle (docs/lifecycle.md) against the lab's source
// server on a real socket. Serving: the quick sources are fetched after the Start context ended
// (and the scraper then ends by itself: Stop has nothing to drain).
// Long work: a slow source that sends half its body, then stalls for ten minutes; a Stop whose
// context ends first abandons it and returns the context's cause.
func TestScraperLifecycle(t *testing.T) {
	t.Parallel()
	var ps []proxy.Proxy
	for port := range 30 {
		ps = append(ps, proxy.Proxy{Scheme: proxy.HTTP, Host: "127.0.0.9", Port: uint16(8000 + port)})
	}
	srcs := lab.NewSources(lab.SourcesConfig{Candidates: ps, N: 3, Slow: 1, SlowDelay: 10 * time.Minute})
	if err := srcs.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srcs.Stop(context.Background()); err != nil {
			t.Errorf("stop sources: %v", err)
		}
	})
	var sources []Source
	for _, in := range srcs.Infos() {
		sources = append(sources, Source{Name: in.Name, URL: in.URL, Format: in.Format, JSONPath: in.JSONPath})
	}
	slow := len(sources) - 1 // the last one
	state := func(s *Scraper, i int) string { return s.Stats()[i].State }
	newScraper := func(t *testing.T, sources []Source) *Scraper {
		f := fetch.New(fetch.Config{Retries: -1})
		t.Cleanup(f.Close)
		return NewScraper(ScraperConfig{Sources: sources, Fetcher: f,
			Settings: Config{Concurrency: 4, Timeout: Duration(time.Hour), CIDRCap: 10}})
	}
	lifecycletest.Run(t, lifecycletest.Subject[*Scraper]{
		New:     func(t *testing.T) *Scraper { return newScraper(t, sources[:slow]) },
		NewBusy: func(t *testing.T) *Scraper { return newScraper(t, sources) },
		Serving: func(t *testing.T, s *Scraper) {
			testkit.WaitFor(t, time.Minute, "the fast sources done", func() bool { return state(s, 0) == StateOK && state(s, 1) == StateOK })
		},
		Busy: func(t *testing.T, s *Scraper) {
			testkit.WaitFor(t, time.Minute, "the slow source running", func() bool { return state(s, slow) == StateRunning })
		},
		Cut: func(t *testing.T, s *Scraper) {
			select {
			case <-s.Done():
			default:
				t.Error("Done is not closed after Stop")
			}
			if st := s.Stats()[slow]; st.State != StateAbandoned {
				t.Errorf("slow source after the cut: %+v, want abandoned", st)
			}
		},
	})
}
