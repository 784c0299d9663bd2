// Package metrics exposes proxyline's Prometheus metrics (docs/metrics.md) from a registry of
// its own: one Metrics per process, never the global default registry. Two kinds:
//
//   - Process-local counters and histograms, fed by the parts that do the work through small
//     methods (ObserveCheck, ObserveSource, Upstream, TaskStarted, OrphansSwept) or the
//     WrapChecker decorator of a queue worker's checkers. Whoever builds those parts (proxyline
//     run) hands them the Metrics; the parts themselves never import this package.
//   - Gauges read from the queue's database at scrape time (pool size by protocol and anonymity,
//     jobs by state; per-source candidates and yield at most once a minute), by a collector
//     with a query timeout: a slow database gives proxyline_database_up 0, never a hung scrape.
//
// Handler serves the text exposition format at /metrics.
package metrics

import (
	"cmp"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/queue"
)

// Config configures Metrics. Zero values mean the defaults named in each field's doc.
type Config struct {
	// Store, when set, adds the gauges read from its database at scrape time.
	Store *queue.Store
	// QueryTimeout bounds the database reads of one scrape (the pool's size, the jobs by
	// state). Default 5 s.
	QueryTimeout time.Duration
	// SourceEvery is how often the per-source gauges are read again: they join every sighting
	// with the pool (seconds for a million proxies on SQLite), so scrapes in between serve the
	// last reading. Default 1 min.
	SourceEvery time.Duration
	// SourceTimeout bounds one reading of the per-source gauges. Default 1 min.
	SourceTimeout time.Duration
	// MaxLabelValues bounds the distinct values of the upstream and source labels; further
	// ones are counted under "other". Default 256.
	MaxLabelValues int
	// Logger receives collection errors. Default: discard.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultQueryTimeout   = 5 * time.Second
	DefaultSourceEvery    = time.Minute
	DefaultSourceTimeout  = time.Minute
	DefaultMaxLabelValues = 256
)

// Other is the label value under which values beyond Config.MaxLabelValues are counted.
const Other = "other"

// Metrics holds one process's collectors in its own registry.
type Metrics struct {
	cfg Config
	reg *prometheus.Registry

	checks       *prometheus.CounterVec
	checkSeconds *prometheus.HistogramVec

	scrapeBytes      *prometheus.CounterVec
	scrapeCandidates *prometheus.CounterVec
	scrapeSources    *prometheus.CounterVec

	upstreamRequests *prometheus.CounterVec
	upstreamErrors   *prometheus.CounterVec
	upstreamSeconds  *prometheus.HistogramVec

	supervised prometheus.Gauge
	orphans    prometheus.Counter

	upstreams, sources *labelSet
}

// New returns Metrics with every collector registered, the Go runtime's and the process's
// included.
func New(cfg Config) (*Metrics, error) {
	if cfg.QueryTimeout < 0 || cfg.SourceEvery < 0 || cfg.SourceTimeout < 0 || cfg.MaxLabelValues < 0 {
		return nil, errors.New("metrics: timeouts and limits must not be negative")
	}
	cfg.QueryTimeout = cmp.Or(cfg.QueryTimeout, DefaultQueryTimeout)
	cfg.SourceEvery = cmp.Or(cfg.SourceEvery, DefaultSourceEvery)
	cfg.SourceTimeout = cmp.Or(cfg.SourceTimeout, DefaultSourceTimeout)
	cfg.MaxLabelValues = cmp.Or(cfg.MaxLabelValues, DefaultMaxLabelValues)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{cfg: cfg, reg: prometheus.NewRegistry(),
		upstreams: newLabelSet(cfg.MaxLabelValues), sources: newLabelSet(cfg.MaxLabelValues)}
	m.define()
	cs := []prometheus.Collector{m.checks, m.checkSeconds, m.scrapeBytes, m.scrapeCandidates, m.scrapeSources,
		m.upstreamRequests, m.upstreamErrors, m.upstreamSeconds, m.supervised, m.orphans,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	if cfg.Store != nil {
		cs = append(cs, newDBCollector(cfg.Store, cfg.QueryTimeout, cfg.SourceEvery, cfg.SourceTimeout, cfg.Logger))
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// define makes the metrics this process counts itself (the database's are read by the
// collector at scrape time): their names, help and labels.
func (m *Metrics) define() {
	m.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proxyline_checks_total",
		Help: "Proxy checks done, by outcome (alive or the error class) and protocol (as found; unknown when none answered).",
	}, []string{"outcome", "protocol"})
	m.checkSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "proxyline_check_duration_seconds",
		Help:    "Time one proxy check took, by outcome.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"outcome"})
	m.scrapeBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proxyline_scrape_bytes_total",
		Help: "Bytes of source bodies read by the scraper (after decompression), by source.",
	}, []string{"source"})
	m.scrapeCandidates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proxyline_scrape_candidates_total",
		Help: "Proxy candidates extracted from sources (duplicates included), by source.",
	}, []string{"source"})
	m.scrapeSources = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proxyline_scrape_source_runs_total",
		Help: "Fetches of a source that ended, by source and final state (ok, partial, failed, abandoned).",
	}, []string{"source", "state"})
	m.upstreamRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proxyline_rotator_requests_total",
		Help: "Requests the rotating proxy sent through an upstream proxy, by upstream (scheme://host:port, no credentials).",
	}, []string{"upstream"})
	m.upstreamErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proxyline_rotator_errors_total",
		Help: "Requests through an upstream proxy that failed, by upstream.",
	}, []string{"upstream"})
	m.upstreamSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "proxyline_rotator_request_duration_seconds",
		Help:    "Time to the upstream's answer (or failure) of a request through the rotating proxy, by upstream.",
		Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"upstream"})
	m.supervised = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "proxyline_supervised_processes",
		Help: "Supervised tasks (external checker runs) running now in this process.",
	})
	m.orphans = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "proxyline_orphans_swept_total",
		Help: "Leftovers of dead supervisors (processes, cgroups, task directories) found and removed by sweeps of this process.",
	})
}

// Registry returns the registry, for collectors of other parts.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' text format. A collector that fails (the database)
// is logged and left out; the others are still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(m.cfg.Logger.Handler(), slog.LevelWarn),
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.reg, // promhttp_metric_handler_errors_total
		EnableOpenMetrics: false,
	})
}

// CheckObserver is told every check result (WrapChecker does it for a worker's checkers).
type CheckObserver interface{ ObserveCheck(check.Result) }

// ObserveCheck counts one check result.
func (m *Metrics) ObserveCheck(r check.Result) {
	if r.Class == "" {
		return // a proxy never checked (its job was cut short first)
	}
	protocol := string(r.Proxy.Scheme)
	if protocol == "" {
		protocol = "unknown"
	}
	m.checks.WithLabelValues(string(r.Class), protocol).Inc()
	m.checkSeconds.WithLabelValues(string(r.Class)).Observe(r.Total.Seconds())
}

// SourceObserver is told each source's end by the scraper (scrape.ScraperConfig.OnSource).
type SourceObserver interface {
	ObserveSource(source, state string, bytes int64, candidates int)
}

// ObserveSource counts one source fetch that ended in state, with the bytes read and the
// candidates extracted. Wire it as scrape.ScraperConfig.OnSource:
//
//	OnSource: func(st scrape.SourceStats) { m.ObserveSource(st.Name, st.State, st.Bytes, st.Parsed) }
func (m *Metrics) ObserveSource(source, state string, bytes int64, candidates int) {
	source = m.sources.value(source)
	m.scrapeBytes.WithLabelValues(source).Add(float64(max(bytes, 0)))
	m.scrapeCandidates.WithLabelValues(source).Add(float64(max(candidates, 0)))
	m.scrapeSources.WithLabelValues(source, state).Inc()
}

// UpstreamSeries are the series of one upstream of the rotating proxy, resolved once (the label
// bound applied, the children of each vector looked up): recording an attempt is then three
// atomic updates, without a map lookup, a lock or an allocation. It is rotate.AttemptRecorder.
type UpstreamSeries struct {
	requests, errors prometheus.Counter
	seconds          prometheus.Observer
}

// Upstream returns the series of the upstream labelled label (scheme://host:port, as the
// rotating proxy names it: never credentials). Past Config.MaxLabelValues distinct labels it
// returns the series of Other. The errors counter appears at 0, so that error ratios have a
// denominator and a numerator from the first request. Wire it as rotate.Config.Observer through
// a one-line adapter (internal/run's rotatorObserver).
func (m *Metrics) Upstream(label string) *UpstreamSeries {
	label = m.upstreams.value(label)
	return &UpstreamSeries{requests: m.upstreamRequests.WithLabelValues(label),
		errors: m.upstreamErrors.WithLabelValues(label), seconds: m.upstreamSeconds.WithLabelValues(label)}
}

// Attempt counts one request (or tunnel dial) through the upstream that took took and failed
// with err (nil: it worked).
func (u *UpstreamSeries) Attempt(took time.Duration, err error) {
	u.requests.Inc()
	if err != nil {
		u.errors.Inc()
	}
	u.seconds.Observe(took.Seconds())
}

// SupervisionObserver is told of supervised tasks and of sweeps.
type SupervisionObserver interface {
	TaskStarted() (done func())
	OrphansSwept(n int)
}

// TaskStarted counts a supervised task as running until done is called (once; later calls do
// nothing).
func (m *Metrics) TaskStarted() (done func()) {
	m.supervised.Inc()
	var once sync.Once
	return func() { once.Do(m.supervised.Dec) }
}

// OrphansSwept counts leftovers a sweep removed (supervise.SweepReport.Found()).
func (m *Metrics) OrphansSwept(n int) {
	if n > 0 {
		m.orphans.Add(float64(n))
	}
}

// labelSet bounds the distinct values of a label: past its size, new values become Other, so
// that a pool of a million upstreams cannot make a million series.
type labelSet struct {
	mu   sync.Mutex
	max  int
	seen map[string]struct{} // guarded by mu
}

func newLabelSet(n int) *labelSet { return &labelSet{max: n, seen: map[string]struct{}{}} }

func (l *labelSet) value(v string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[v]; ok {
		return v
	}
	if len(l.seen) >= l.max {
		return Other
	}
	l.seen[v] = struct{}{}
	return v
}
