package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/metrics"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/scrape"
	"github.com/proxyline/proxyline/internal/scrape/fetch"
	"github.com/proxyline/proxyline/internal/testdb"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// families scrapes /metrics from h and parses it as Prometheus does.
func families(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s %s: %s", resp.Status, resp.Header.Get("Content-Type"), b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fs
}

// value returns the value of the sample of family name whose labels are exactly labels (name,
// value pairs, in any order), and whether there is one. A histogram's value is its sample count.
func value(fs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := fs[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		wanted := map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			wanted[labels[i]] = labels[i+1]
		}
		match := true
		for _, l := range m.GetLabel() {
			if v, ok := wanted[l.GetName()]; !ok || v != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func want(t *testing.T, fs map[string]*dto.MetricFamily, v float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(fs, name, labels...)
	if !ok || got != v {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, v)
	}
}

// TestChecksAndDatabaseGauges: a worker whose checker is wrapped checks a lab into the pool;
// /metrics then counts every check by outcome and protocol, and reads the pool, the queue, the
// sources and the worker from the database.
func TestChecksAndDatabaseGauges(t *testing.T) {
	t.Parallel()
	for _, engine := range testdb.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			l := testdb.Lab(t, lab.Config{HTTP: 8, SOCKS5: 4, Anonymous: 2, Refused: 3, Liar: 2})
			st := testdb.Open(t, engine)
			m, err := metrics.New(metrics.Config{Store: st})
			if err != nil {
				t.Fatal(err)
			}
			var seen []pool.Sighting
			for _, p := range l.Candidates() {
				seen = append(seen, pool.Sighting{Source: "lab-list", Proxy: p, Seen: time.Now()})
			}
			if err := pool.RecordSightings(context.Background(), st.DB(), seen); err != nil {
				t.Fatal(err)
			}
			testdb.Work(t, st, l, 5, queue.WorkerConfig{NewChecker: metrics.WrapChecker(testdb.Checker(l), m)})

			es, err := pool.List(context.Background(), st.DB(), true)
			if err != nil || len(es) != 19 {
				t.Fatalf("pool: %d rows, %v", len(es), err)
			}
			byOutcome := map[[2]string]float64{}
			live := map[[2]string]float64{}
			for _, e := range es {
				byOutcome[[2]string{string(e.Class), e.Protocol}]++
				if e.Class == "alive" {
					live[[2]string{e.Protocol, string(e.Anonymity)}]++
				}
			}
			fs := families(t, m.Handler())
			for k, n := range byOutcome {
				want(t, fs, n, "proxyline_checks_total", "outcome", k[0], "protocol", k[1])
			}
			want(t, fs, 14, "proxyline_check_duration_seconds", "outcome", "alive")
			want(t, fs, 3, "proxyline_check_duration_seconds", "outcome", "refused")
			want(t, fs, 2, "proxyline_check_duration_seconds", "outcome", "mismatch")
			if len(live) < 3 {
				t.Errorf("live proxies by protocol and anonymity: %v", live)
			}
			for k, n := range live {
				want(t, fs, n, "proxyline_pool_proxies", "protocol", k[0], "anonymity", k[1])
			}
			want(t, fs, 8, "proxyline_pool_proxies", "protocol", "http", "anonymity", "elite")
			want(t, fs, 14, "proxyline_pool_last_results", "class", "alive")
			want(t, fs, 3, "proxyline_pool_last_results", "class", "refused")
			want(t, fs, 4, "proxyline_queue_jobs", "state", "completed")
			want(t, fs, 0, "proxyline_queue_jobs", "state", "available")
			want(t, fs, 19, "proxyline_source_candidates", "source", "lab-list")
			want(t, fs, 19, "proxyline_source_checked", "source", "lab-list")
			want(t, fs, 14, "proxyline_source_alive", "source", "lab-list")
			want(t, fs, 1, "proxyline_database_up")
			if _, ok := fs["go_goroutines"]; !ok {
				t.Error("no Go runtime metrics")
			}
			if _, ok := fs["process_open_fds"]; !ok {
				t.Error("no process metrics")
			}
		})
	}
}

// TestScrapeMetrics: a real scrape of lab sources, its OnSource wired to ObserveSource.
func TestScrapeMetrics(t *testing.T) {
	t.Parallel()
	l := testdb.Lab(t, lab.Config{HTTP: 30})
	srcs := lab.NewSources(lab.SourcesConfig{Candidates: l.Candidates(), N: 3})
	ctx := context.Background()
	if err := srcs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srcs.Stop(ctx)
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var sources []scrape.Source
	for _, info := range srcs.Infos() {
		sources = append(sources, scrape.Source{Name: info.Name, URL: info.URL, Format: info.Format, JSONPath: info.JSONPath})
	}
	sources = append(sources, scrape.Source{Name: "missing", URL: srcs.HostileURL(lab.HostileNotFound)})
	f := fetch.New(fetch.Config{Retries: -1})
	defer f.Close()
	sc := scrape.NewScraper(scrape.ScraperConfig{
		Sources:  sources,
		Settings: scrape.Config{Concurrency: 4, Timeout: scrape.Duration(30 * time.Second), CIDRCap: 10},
		Fetcher:  f,
		OnSource: func(st scrape.SourceStats) { m.ObserveSource(st.Name, st.State, st.Bytes, st.Parsed) },
	})
	if err := sc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-sc.Done()
	if err := sc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	fs := families(t, m.Handler())
	for _, st := range sc.Stats() {
		if st.Name == "missing" {
			want(t, fs, 1, "proxyline_scrape_source_runs_total", "source", st.Name, "state", "failed")
			continue
		}
		if st.State != scrape.StateOK || st.Parsed != 10 || st.Bytes == 0 {
			t.Errorf("source %+v", st)
		}
		want(t, fs, float64(st.Bytes), "proxyline_scrape_bytes_total", "source", st.Name)
		want(t, fs, 10, "proxyline_scrape_candidates_total", "source", st.Name)
		want(t, fs, 1, "proxyline_scrape_source_runs_total", "source", st.Name, "state", "ok")
	}
}

// TestUpstreamsAndSupervision: the rotator's and the supervisor's observers; upstream labels
// carry no credentials and are bounded.
func TestUpstreamsAndSupervision(t *testing.T) {
	t.Parallel()
	m, err := metrics.New(metrics.Config{MaxLabelValues: 3})
	if err != nil {
		t.Fatal(err)
	}
	var _ metrics.SupervisionObserver = m
	var _ metrics.CheckObserver = m
	var _ metrics.SourceObserver = m
	up := m.Upstream("socks5://10.0.0.1:1080")
	up.Attempt(30*time.Millisecond, nil)
	up.Attempt(2*time.Second, errors.New("upstream reset"))
	for i := range 5 { // two more than the label bound allows
		m.Upstream(fmt.Sprintf("http://10.0.1.%d:80", i)).Attempt(time.Millisecond, nil)
	}
	done1, done2 := m.TaskStarted(), m.TaskStarted()
	done1()
	done1() // once only
	m.OrphansSwept(3)
	m.OrphansSwept(0)

	fs := families(t, m.Handler())
	want(t, fs, 2, "proxyline_rotator_requests_total", "upstream", "socks5://10.0.0.1:1080")
	want(t, fs, 1, "proxyline_rotator_errors_total", "upstream", "socks5://10.0.0.1:1080")
	want(t, fs, 2, "proxyline_rotator_request_duration_seconds", "upstream", "socks5://10.0.0.1:1080")
	want(t, fs, 0, "proxyline_rotator_errors_total", "upstream", "http://10.0.1.0:80") // there from the first request
	want(t, fs, 1, "proxyline_rotator_requests_total", "upstream", "http://10.0.1.0:80")
	want(t, fs, 1, "proxyline_rotator_requests_total", "upstream", "http://10.0.1.1:80")
	want(t, fs, 3, "proxyline_rotator_requests_total", "upstream", metrics.Other)
	want(t, fs, 1, "proxyline_supervised_processes")
	want(t, fs, 3, "proxyline_orphans_swept_total")
	done2()
	want(t, families(t, m.Handler()), 0, "proxyline_supervised_processes")
	// Without a store, no database gauges at all.
	if _, ok := fs["proxyline_database_up"]; ok {
		t.Error("database gauges without a store")
	}
}

// TestUpstreamAttemptAllocatesNothing: recording an attempt is on the rotator's request path;
// it must not allocate (allocations, unlike time, do not depend on the machine's load). Not
// parallel: AllocsPerRun counts the whole process's allocations.
func TestUpstreamAttemptAllocatesNothing(t *testing.T) {
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	up := m.Upstream("http://10.0.0.1:8080")
	fail := errors.New("refused")
	if n := testing.AllocsPerRun(1000, func() { up.Attempt(time.Millisecond, nil); up.Attempt(time.Second, fail) }); n != 0 {
		t.Errorf("UpstreamSeries.Attempt allocates %v times per call pair, want 0", n)
	}
}

// TestDatabaseDown: when the database cannot be read, /metrics still answers, with
// proxyline_database_up 0 and the process-local metrics.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	db := testdb.Database(t, queue.EngineSQLite)
	st := testdb.OpenAt(t, db, queue.Migrate)
	m, err := metrics.New(metrics.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	want(t, families(t, m.Handler()), 1, "proxyline_database_up")
	st.Close() // every query now fails
	m.OrphansSwept(1)
	fs := families(t, m.Handler())
	want(t, fs, 0, "proxyline_database_up")
	want(t, fs, 1, "proxyline_orphans_swept_total")
	if _, ok := fs["proxyline_queue_jobs"]; ok {
		t.Error("queue gauges from a database that cannot be read")
	}
}

// TestSourceGaugesEvery: the per-source gauges are read at most once per SourceEvery; scrapes in
// between serve the last reading, with its time.
func TestSourceGaugesEvery(t *testing.T) {
	t.Parallel()
	st := testdb.Open(t, queue.EngineSQLite)
	ctx := context.Background()
	sight := func(host string) {
		t.Helper()
		p := proxy.Proxy{Scheme: proxy.HTTP, Host: host, Port: 80}
		if err := pool.RecordSightings(ctx, st.DB(), []pool.Sighting{{Source: "s", Proxy: p, Seen: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	sight("10.0.0.1")
	slow, err := metrics.New(metrics.Config{Store: st, SourceEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := metrics.New(metrics.Config{Store: st, SourceEvery: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	fs := families(t, slow.Handler())
	want(t, fs, 1, "proxyline_source_candidates", "source", "s")
	at, ok := value(fs, "proxyline_source_read_timestamp_seconds")
	if !ok || at < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("read timestamp %v (present %v)", at, ok)
	}
	sight("10.0.0.2")
	fs = families(t, slow.Handler())
	want(t, fs, 1, "proxyline_source_candidates", "source", "s") // the reading of an hour
	want(t, fs, at, "proxyline_source_read_timestamp_seconds")
	want(t, families(t, fast.Handler()), 2, "proxyline_source_candidates", "source", "s")
}
