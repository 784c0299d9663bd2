package scrape

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/scrape/geo"
	"github.com/proxyline/proxyline/proxy"
)

// checkIdle is how long an external checker's chunk that is not full waits for more
// candidates before it runs.
const checkIdle = 300 * time.Millisecond

// run fetches, checks (if asked) and waits for the end, the grace period or the force; then
// writes everything.
func (r *runner) run(ctx context.Context) error {
	start := time.Now()
	if err := r.sc.Start(ctx); err != nil {
		r.abort()
		return err
	}
	if r.o.Check {
		r.cs = newCheckStream(r.sc.Candidates(), r.backend, r.result)
		if err := r.cs.Start(ctx); err != nil {
			r.abort()
			return err
		}
	}
	allDone := make(chan struct{})
	go func() {
		<-r.sc.Done()
		if r.cs != nil {
			<-r.cs.Done()
		}
		close(allDone)
	}()
	interrupted := false
	if r.o.KnownBad != BadNoGracefulStop {
		select {
		case <-allDone:
		case <-ctx.Done():
			interrupted = true
			r.stopWithin(r.o.Grace)
		case <-r.io.Force:
		}
	}
	select {
	case <-allDone:
	case <-r.io.Force:
		r.abort()
		return errors.New("interrupted twice: exiting at once, nothing written")
	}
	return r.finish(ctx, start, interrupted)
}

// stopWithin stops the scraper and the checks: nothing new starts, work in flight has until
// grace passes. It returns at once; the run's allDone follows.
func (r *runner) stopWithin(grace time.Duration) {
	r.io.Log.Info("stopping: no new fetch or check; work in flight may finish", "grace", grace)
	g, cancel := context.WithTimeout(context.Background(), grace)
	go func() {
		<-r.sc.Done()
		if r.cs != nil {
			<-r.cs.Done()
		}
		cancel()
	}()
	// Their errors say what the grace period cut: the statistics show it (abandoned sources),
	// and the run writes what was found all the same.
	go func() { _ = r.sc.Stop(g) }()
	if r.cs != nil {
		go func() { _ = r.cs.Stop(g) }()
	}
}

// sourceDone is called as each source ends: a log line (or the progress bar).
func (r *runner) sourceDone(st SourceStats) {
	n := r.sourcesDone.Add(1)
	if r.bar != nil {
		r.mu.Lock()
		live := r.live
		r.mu.Unlock()
		desc := fmt.Sprintf("sources (%d candidates", r.sc.col.count())
		if r.o.Check {
			desc += fmt.Sprintf(", %d live", live)
		}
		r.bar.Describe(desc + ")")
		_ = r.bar.Add(1)
		return
	}
	attrs := []any{"source", st.Name, "state", st.State, "done", n, "total", len(r.sources), "bytes", st.Bytes,
		"parsed", st.Parsed, "new", st.New, "took", st.Took.Round(time.Millisecond)}
	if st.Err != "" {
		r.io.Log.Warn("source done", append(attrs, "err", st.Err)...)
		return
	}
	r.io.Log.Info("source done", attrs...)
}

// result is the check stream's emit, with the candidate's proxy as given: one goroutine at a time.
func (r *runner) result(given proxy.Proxy, res check.Result) {
	if res.Class == check.Canceled {
		return // not finished: neither live nor dead
	}
	srcs := r.sc.SourcesOf(given)
	names := r.nameList(srcs)
	g := r.geo.Lookup(given.Host)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked++
	if res.OK() {
		r.live++
		r.sc.AddLive(srcs)
		if r.dir != nil && r.writeErr == nil {
			r.writeErr = r.dir.add(res.Proxy, names, g, &res)
		}
	}
	if r.writeErr == nil {
		r.writeErr = r.rw.Write(res, extraValues(r.geo != nil, names, g)...)
	}
	if res.OK() && r.o.Output == "" && r.writeErr == nil {
		r.writeErr = r.rw.Flush() // on stdout, each live proxy as it comes
	}
}

func (r *runner) nameList(idx []int) []string {
	out := make([]string, len(idx))
	for i, k := range idx {
		out[i] = r.names[k]
	}
	return out
}

// finish writes the outputs, enqueues, prints the statistics and decides the outcome.
func (r *runner) finish(ctx context.Context, start time.Time, interrupted bool) error {
	if r.bar != nil {
		_ = r.bar.Finish()
	}
	found := r.sc.Found()
	err := r.writeOutputs(found)
	if err == nil && r.o.Enqueue {
		err = r.enqueue(ctx, found)
	}
	if err != nil {
		r.abort()
		return err
	}
	stats := r.sc.Stats()
	writeTable(r.io.Stderr, stats, r.o.Check)
	if r.o.Stats != "" {
		if err := r.writeStats(stats); err != nil {
			return err
		}
	}
	r.summary(stats, len(found), time.Since(start), interrupted)
	var extErr error
	if r.cs != nil {
		extErr = r.cs.Err()
	}
	switch {
	case interrupted:
		return nil
	case extErr != nil:
		return extErr
	case len(found) == 0:
		return fmt.Errorf("%w: no candidate in any source", ErrNothing)
	case r.o.Check && r.live == 0:
		return fmt.Errorf("%w: no live proxy", ErrNothing)
	}
	return nil
}

// writeOutputs writes the candidates (without --check; with it, results were written as they
// came), then makes every file appear.
func (r *runner) writeOutputs(found []Candidate) error {
	if !r.o.Check {
		for _, c := range found {
			names := r.nameList(c.Sources)
			g := r.geo.Lookup(c.Proxy.Host)
			if err := r.cw.write(c.Proxy, names, g); err != nil {
				return fmt.Errorf("write candidates: %w", err)
			}
			if r.dir != nil {
				if err := r.dir.add(c.Proxy, names, g, nil); err != nil {
					return err
				}
			}
		}
		if err := r.cw.flush(); err != nil {
			return fmt.Errorf("write candidates: %w", err)
		}
	} else {
		if r.writeErr != nil {
			return fmt.Errorf("write results: %w", r.writeErr)
		}
		if err := r.rw.Flush(); err != nil {
			return err
		}
	}
	if err := r.out.commit(); err != nil {
		return err
	}
	if r.dir != nil {
		return r.dir.commit()
	}
	return nil
}

// enqueue puts the candidates on the queue as check jobs, and records in the pool which source
// named each (for the per-source yield) and what the geo databases say of it. It runs even
// after the first signal (what was found is kept), bounded in time.
func (r *runner) enqueue(ctx context.Context, found []Candidate) error {
	if len(found) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	opts, err := backend.JobOptions(r.o.Judge, r.o.Timeout) // the CA's certificates travel in the jobs
	if err != nil {
		return usage(err)
	}
	st, err := queue.Open(ctx, r.o.DB.Config(queue.Migrate, r.io.Log))
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	lines := make([]string, len(found))
	var seen []pool.Sighting
	var geos []pool.Geo
	for i, c := range found {
		lines[i] = c.Proxy.String()
		for _, s := range c.Sources {
			seen = append(seen, pool.Sighting{Source: r.names[s], Proxy: c.Proxy, Seen: now})
		}
		if g := r.geo.Lookup(c.Proxy.Host); !g.IsZero() {
			geos = append(geos, poolGeo(c.Proxy.Addr(), g))
		}
	}
	if err := pool.RecordSightings(ctx, st.DB(), seen); err != nil {
		return err
	}
	if err := pool.RecordGeo(ctx, st.DB(), geos, now); err != nil {
		return err
	}
	ids, err := st.EnqueueChecks(ctx, queue.Split(lines, "scrape", r.o.Chunk), opts)
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	r.io.Log.Info("enqueued", "jobs", len(ids), "proxies", len(lines), "database", st.Name())
	_, err = fmt.Fprintf(r.io.Stdout, "enqueued %d jobs (%d proxies)\n", len(ids), len(lines))
	return err
}

func poolGeo(addr string, g geo.Info) pool.Geo {
	return pool.Geo{Addr: addr, Country: g.Country, City: g.City, ASN: int64(g.ASN), ASOrg: g.ASOrg}
}

// writeStats writes the per-source statistics as JSON, atomically.
func (r *runner) writeStats(stats []SourceStats) error {
	f, err := createAtomic(r.o.Stats, false)
	if err != nil {
		return fmt.Errorf("--stats: %w", err)
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(stats); err != nil {
		f.Abort()
		return fmt.Errorf("--stats: %w", err)
	}
	return f.Commit()
}

// summary prints one line: sources by state, candidates, live.
func (r *runner) summary(stats []SourceStats, found int, took time.Duration, interrupted bool) {
	by := map[string]int{}
	for _, s := range stats {
		by[s.State]++
	}
	line := fmt.Sprintf("scraped %d sources in %.2fs (%s): %d candidates", len(stats), took.Seconds(), joinCounts(by), found)
	if r.o.Check {
		r.mu.Lock()
		line += fmt.Sprintf(", %d checked, %d live", r.checked, r.live)
		r.mu.Unlock()
	}
	if interrupted {
		line += "; interrupted: wrote what was found"
	}
	fmt.Fprintln(r.io.Stderr, line)
}
