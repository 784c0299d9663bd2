package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/secret"
)

// dbCollector reads the gauges of the queue's database when Prometheus scrapes. The pool's size
// and the jobs by state are read at every scrape, within a timeout: a database that does not
// answer makes proxyline_database_up 0 and leaves them out of that scrape, rather than hanging
// it. The per-source gauges join every sighting with the pool (seconds for a million proxies on
// SQLite), so they are read at most once per sourceEvery, by the scrape that finds them older,
// and the others serve the last reading (proxyline_source_read_timestamp_seconds says when).
type dbCollector struct {
	store                      *queue.Store
	timeout                    time.Duration
	sourceEvery, sourceTimeout time.Duration
	log                        *slog.Logger

	mu       sync.Mutex // held while the sources are read: one reading at a time
	sources  []pool.SourceYield
	sourceAt time.Time // guarded by mu; zero before the first reading

	up, took, pool, results, jobs, srcCandidates, srcChecked, srcAlive, srcAt *prometheus.Desc
}

func newDBCollector(st *queue.Store, timeout, sourceEvery, sourceTimeout time.Duration, log *slog.Logger) *dbCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &dbCollector{store: st, timeout: timeout, sourceEvery: sourceEvery, sourceTimeout: sourceTimeout, log: log,
		up:            d("proxyline_database_up", "1 when this scrape read the queue's database, 0 when it failed or timed out."),
		took:          d("proxyline_database_collect_seconds", "Time this scrape spent reading the queue's database."),
		pool:          d("proxyline_pool_proxies", "Live proxies in the pool (last check alive), by protocol and anonymity.", "protocol", "anonymity"),
		results:       d("proxyline_pool_last_results", "Proxies in the pool by the class of their last check (alive or the error class).", "class"),
		jobs:          d("proxyline_queue_jobs", "Jobs on the queue by River state.", "state"),
		srcCandidates: d("proxyline_source_candidates", "Proxies a scrape source named (scrape --enqueue).", "source"),
		srcChecked:    d("proxyline_source_checked", "Proxies a source named that the pool has a result for.", "source"),
		srcAlive:      d("proxyline_source_alive", "Proxies a source named whose last check was alive: the source's yield.", "source"),
		srcAt:         d("proxyline_source_read_timestamp_seconds", "When the per-source gauges were read from the database (Unix time)."),
	}
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.took, c.pool, c.results, c.jobs, c.srcCandidates, c.srcChecked, c.srcAlive, c.srcAt} {
		ch <- d
	}
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	ms, err := c.read(ctx)
	up := 1.0
	if err != nil {
		up = 0
		c.log.Warn("metrics: reading the database failed", "err", secret.Error(err))
	} else {
		ms = append(ms, c.sourceMetrics()...)
	}
	for _, m := range ms {
		ch <- m
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(c.took, prometheus.GaugeValue, time.Since(start).Seconds())
}

// read returns the pool and queue gauges once every read succeeded, so a scrape never shows
// half of them.
func (c *dbCollector) read(ctx context.Context) ([]prometheus.Metric, error) {
	sizes, err := pool.Size(ctx, c.store.DB())
	if err != nil {
		return nil, err
	}
	jobs, err := jobsByState(ctx, c.store.DB())
	if err != nil {
		return nil, err
	}
	var ms []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ms = append(ms, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	for _, l := range sizes.Live {
		gauge(c.pool, float64(l.Proxies), l.Protocol, string(l.Anonymity))
	}
	for class, n := range sizes.ByClass {
		gauge(c.results, float64(n), string(class))
	}
	for state, n := range jobs {
		gauge(c.jobs, float64(n), state)
	}
	return ms, nil
}

// jobStates are River's job states, each reported even when no job is in it.
var jobStates = []string{"available", "scheduled", "pending", "retryable", "running", "completed", "cancelled", "discarded"}

// jobsByState counts the jobs of River's table by state: one indexed GROUP BY, the same SQL on
// both engines (queue's Status counts them too, with the pool's counts, which cost more).
func jobsByState(ctx context.Context, db pool.DB) (map[string]int64, error) {
	out := make(map[string]int64, len(jobStates))
	for _, s := range jobStates {
		out[s] = 0
	}
	rows, err := db.Query(ctx, `SELECT state, count(*) FROM river_job GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("count jobs: %w", err)
		}
		out[state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	return out, nil
}

// sourceMetrics returns the per-source gauges, read again (within sourceTimeout) when the last
// reading is older than sourceEvery and no other scrape is reading them; a failed reading keeps
// the last one (its timestamp says how old it is) and is logged.
func (c *dbCollector) sourceMetrics() []prometheus.Metric {
	if c.mu.TryLock() {
		if time.Since(c.sourceAt) >= c.sourceEvery {
			ctx, cancel := context.WithTimeout(context.Background(), c.sourceTimeout)
			ys, err := pool.SourceYields(ctx, c.store.DB())
			cancel()
			if err != nil {
				c.log.Warn("metrics: reading the sources' yield failed", "err", secret.Error(err))
			} else {
				c.sources, c.sourceAt = ys, time.Now()
			}
		}
		c.mu.Unlock()
	}
	c.mu.Lock() // a reading in progress elsewhere: wait for it, it is bounded by its scrape's timeout
	defer c.mu.Unlock()
	if c.sourceAt.IsZero() {
		return nil
	}
	var ms []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ms = append(ms, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	for _, y := range c.sources {
		gauge(c.srcCandidates, float64(y.Candidates), y.Source)
		gauge(c.srcChecked, float64(y.Checked), y.Source)
		gauge(c.srcAlive, float64(y.Alive), y.Source)
	}
	gauge(c.srcAt, float64(c.sourceAt.UnixNano())/1e9)
	return ms
}
