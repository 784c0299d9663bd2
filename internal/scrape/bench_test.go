package scrape

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

// benchCandidates makes n distinct candidates, a third each http, socks5 and bare.
func benchCandidates(n int) []proxy.Proxy {
	ps := make([]proxy.Proxy, n)
	schemes := []proxy.Scheme{proxy.HTTP, proxy.SOCKS5, proxy.Unknown}
	for i := range ps {
		ps[i] = proxy.Proxy{Scheme: schemes[i%3], Host: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Port: uint16(1024 + i%60000)}
	}
	return ps
}

// BenchmarkScrape50Sources: 50 lab sources holding 10,000 candidates in all (every format in
// turn), fetched and extracted concurrently. Target: under 2 s per op.
func BenchmarkScrape50Sources(b *testing.B) {
	src := lab.NewSources(lab.SourcesConfig{Candidates: benchCandidates(10_000), N: 50})
	if err := src.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer src.Stop(context.Background())
	o := Options{Format: "text", Timeout: time.Second, Concurrency: 1, Chunk: 1, Retries: -1,
		CIDRCap: -1, NoCache: true, Fetchers: 50}
	for _, in := range src.Infos() {
		o.Args = append(o.Args, in.URL)
	}
	found := 0
	for b.Loop() {
		out := &countWriter{}
		if err := Run(context.Background(), IO{Stdout: out, Stderr: io.Discard, Log: slog.New(slog.DiscardHandler),
			Force: make(chan struct{})}, o); err != nil {
			b.Fatal(err)
		}
		found = out.lines
	}
	if found != 10_000 {
		b.Fatalf("found %d candidates, want 10000", found)
	}
	b.ReportMetric(float64(found), "candidates/op")
}

// BenchmarkScrapeCheckVsCheck: scrape --check over 50 lab sources against the lab, then the
// in-process checker (what `check` runs) over the list that scrape found, with the same
// concurrency and timeout; reports the first live proxy's delay and the ratio of the two wall
// times. Targets: first live under 1 s, ratio at most 1.10.
func BenchmarkScrapeCheckVsCheck(b *testing.B) {
	l, err := lab.Start(context.Background(), lab.Config{HTTP: 2000, SOCKS5: 2000, Refused: 1000, Bare: 1000, Sources: 50})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := l.Stop(context.Background()); err != nil {
			b.Errorf("stop: %v", err)
		}
	}()
	o := Options{Format: "text", Timeout: 5 * time.Second, Concurrency: 500, Chunk: 100,
		Retries: -1, CIDRCap: -1, NoCache: true, Fetchers: 50, Check: true, Judge: check.JudgeConfig{URL: l.JudgeURL()}}
	for _, in := range l.Sources().Infos() {
		o.Args = append(o.Args, in.URL)
	}
	var scrapeWall, checkWall, firstLive time.Duration
	aliveDiff := 0
	i := 0
	for b.Loop() {
		// Alternate which goes first, so neither always runs on a warmer (or more loaded) machine.
		var scraped, alive int
		if i%2 == 0 {
			scraped = benchScrapeCheck(b, o, &scrapeWall, &firstLive)
			alive = benchCheck(b, l, o, &checkWall)
		} else {
			alive = benchCheck(b, l, o, &checkWall)
			scraped = benchScrapeCheck(b, o, &scrapeWall, &firstLive)
		}
		i++
		// Both must find the 4,000 live lab proxies; on a loaded machine a few may time out in
		// one run or the other, which is reported, not a failure of the benchmark.
		if alive < 3900 || scraped < 3900 {
			b.Fatalf("check found %d alive, scrape --check %d, of 4000", alive, scraped)
		}
		aliveDiff += scraped - alive
	}
	b.ReportMetric(float64(aliveDiff)/float64(b.N), "alive-diff/op")
	n := float64(b.N)
	b.ReportMetric(scrapeWall.Seconds()/n, "scrape-check-s/op")
	b.ReportMetric(checkWall.Seconds()/n, "check-s/op")
	b.ReportMetric(float64(firstLive.Milliseconds())/n, "first-live-ms")
	b.ReportMetric(scrapeWall.Seconds()/checkWall.Seconds(), "ratio")
}

// benchScrapeCheck runs scrape --check once and returns the live proxies written.
func benchScrapeCheck(b *testing.B, o Options, wall, first *time.Duration) int {
	out := &countWriter{start: time.Now()}
	if err := Run(context.Background(), IO{Stdout: out, Stderr: io.Discard, Log: slog.New(slog.DiscardHandler),
		Force: make(chan struct{})}, o); err != nil {
		b.Fatal(err)
	}
	*wall += time.Since(out.start)
	*first += out.first
	return out.lines
}

// benchCheck runs what `check` runs, the in-process checker over the lab's list, once.
func benchCheck(b *testing.B, l *lab.Lab, o Options, wall *time.Duration) int {
	c, err := check.New(check.Options{Judge: l.JudgeURL(), Timeout: o.Timeout})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := c.Prepare(context.Background()); err != nil {
		b.Fatal(err)
	}
	alive := 0
	c.CheckAll(context.Background(), l.Candidates(), o.Concurrency, func(r check.Result) {
		if r.OK() {
			alive++
		}
	})
	*wall += time.Since(start)
	return alive
}

// countWriter counts lines and notes when the first one came.
type countWriter struct {
	mu    sync.Mutex
	start time.Time
	first time.Duration
	lines int
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range p {
		if c == '\n' {
			if w.lines == 0 && !w.start.IsZero() {
				w.first = time.Since(w.start)
			}
			w.lines++
		}
	}
	return len(p), nil
}
