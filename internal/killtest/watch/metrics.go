package watch

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are a watcher's Prometheus metrics, in a registry of their own (never the global one).
// Every metric carries the label watch=<the watch file's name>. Names and meanings:
// docs/operate.md.
type Metrics struct {
	reg *prometheus.Registry

	scans, orphansFound, alerts, scanErrors                   *prometheus.CounterVec
	lastScan, scanSeconds, orphans, candidates, environDenied prometheus.Gauge
	findings, fds, rss, probeValue, probeUp                   *prometheus.GaugeVec

	mu    sync.Mutex
	procs map[[3]string]bool // guarded by mu: (kind, process, pid) label sets set by the last scan
	seen  map[string]bool    // guarded by mu: the keys of the last scan's orphan findings
}

func newMetrics(f *File) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cl := prometheus.Labels{"watch": f.Name}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: cl})
		reg.MustRegister(g)
		return g
	}
	gaugeVec := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: cl}, labels)
		reg.MustRegister(g)
		return g
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: cl}, labels)
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{reg: reg, procs: map[[3]string]bool{}, seen: map[string]bool{}}
	m.scans = counterVec("killtest_watch_scans_total", "Scans of the system.")
	m.scanErrors = counterVec("killtest_watch_scan_errors_total", "Scans that could not judge something, by what: proc (the process table), environ (environments unreadable with a cookie), probe.", "source")
	m.orphansFound = counterVec("killtest_watch_orphans_found_total", "Orphans found: each orphan counted once, when it became a finding.")
	m.alerts = counterVec("killtest_watch_alerts_total", "Runs of the alert command, by result (sent, failed).", "result")
	m.lastScan = gauge("killtest_watch_last_scan_timestamp_seconds", "When the last scan ended, in Unix seconds.")
	m.scanSeconds = gauge("killtest_watch_scan_duration_seconds", "How long the last scan took, probes included.")
	m.orphans = gauge("killtest_watch_orphans", "Orphans of the system at the last scan (orphaned for at least orphans.after).")
	m.candidates = gauge("killtest_watch_orphan_candidates", "Processes seen orphaned at the last scan, not yet for orphans.after.")
	m.environDenied = gauge("killtest_watch_environ_unreadable", "Processes whose environment could not be read at the last scan (matters with a cookie).")
	m.findings = gaugeVec("killtest_watch_findings", "Findings at the last scan, by kind (orphan, fd-growth, rss-growth, limit).", "kind")
	m.fds = gaugeVec("killtest_watch_process_fds", "Open file descriptors of a watched process.", "process", "pid")
	m.rss = gaugeVec("killtest_watch_process_rss_bytes", "Resident anonymous memory (RssAnon, else VmRSS) of a watched process, in bytes.", "process", "pid")
	m.probeValue = gaugeVec("killtest_watch_probe_value", "The last value a probe read.", "probe")
	m.probeUp = gaugeVec("killtest_watch_probe_up", "1 when the probe's last read succeeded, 0 when it failed.", "probe")
	for _, k := range []string{KindOrphan, KindFDGrowth, KindRSSGrowth, KindLimit} {
		m.findings.WithLabelValues(k).Set(0)
	}
	m.scans.WithLabelValues()
	m.orphansFound.WithLabelValues()
	for _, s := range []string{"proc", "environ", "probe"} {
		m.scanErrors.WithLabelValues(s)
	}
	for _, s := range []string{"sent", "failed"} {
		m.alerts.WithLabelValues(s)
	}
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the metrics' registry.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) scanError(source string) { m.scanErrors.WithLabelValues(source).Inc() }

func (m *Metrics) probe(name string, v float64, up bool) {
	if up {
		m.probeValue.WithLabelValues(name).Set(v)
		m.probeUp.WithLabelValues(name).Set(1)
		return
	}
	m.probeUp.WithLabelValues(name).Set(0)
}

// observeProcess sets a watched process's gauge; observeScan removes those of processes gone.
func (m *Metrics) observeProcess(name, kind string, pid int, v float64) {
	g := m.fds
	if kind == KindRSSGrowth {
		g = m.rss
	}
	g.WithLabelValues(name, strconv.Itoa(pid)).Set(v)
}

func (m *Metrics) alert(ok bool) {
	if ok {
		m.alerts.WithLabelValues("sent").Inc()
	} else {
		m.alerts.WithLabelValues("failed").Inc()
	}
}

// observeScan records a scan's outcome: findings by kind, new orphans, the watched processes
// still there (the gauges of the others are removed).
func (m *Metrics) observeScan(r *Report, took time.Duration, denied int, series map[seriesKey]*series) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scans.WithLabelValues().Inc()
	m.lastScan.Set(float64(r.Time.Add(took).UnixNano()) / 1e9)
	m.scanSeconds.Set(took.Seconds())
	m.candidates.Set(float64(r.Pending))
	m.environDenied.Set(float64(denied))
	byKind := map[string]int{KindOrphan: 0, KindFDGrowth: 0, KindRSSGrowth: 0, KindLimit: 0}
	seen := map[string]bool{}
	for _, f := range r.Findings {
		byKind[f.Kind]++
		if f.Kind == KindOrphan {
			seen[f.Key] = true
			if !m.seen[f.Key] {
				m.orphansFound.WithLabelValues().Inc()
			}
		}
	}
	m.seen = seen
	for k, n := range byKind {
		m.findings.WithLabelValues(k).Set(float64(n))
	}
	m.orphans.Set(float64(byKind[KindOrphan]))
	now := map[[3]string]bool{}
	for k := range series {
		now[[3]string{k.Kind, k.Process, strconv.Itoa(k.PID)}] = true
	}
	for l := range m.procs {
		if !now[l] {
			g := m.fds
			if l[0] == KindRSSGrowth {
				g = m.rss
			}
			g.DeleteLabelValues(l[1], l[2])
		}
	}
	m.procs = now
}
