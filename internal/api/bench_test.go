package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/api"
	"github.com/proxyline/proxyline/internal/metrics"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testdb"
)

// envInt reads a positive integer from the environment, else def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkScale generates a pool of PROXYLINE_BENCH_PROXIES proxies (default 1,000,000) with
// PROXYLINE_BENCH_HISTORY checks each spread over 30 days (default 4: 4,000,000 history rows),
// 20 sources and geo for 80 % of the addresses, once per engine (a SQLite file in a temporary
// directory; a fresh PostgreSQL schema), times the migration that adds the pool's counters to
// it, then times the API's pool queries through the handler, status's and export's reads, and
// proxyline status and export as a user runs them (benchCLI). Run it with -benchtime 5x or so:
//
//	go test -run '^$' -bench Scale -benchtime 5x -timeout 60m ./internal/api/
//
// With PROXYLINE_BENCH_KEEP=<directory> the generated pools are kept (a SQLite file there, the
// PostgreSQL schema plg_keep_scale_<proxies>_<history>) and the next run reuses them.
func BenchmarkScale(b *testing.B) {
	n := envInt("PROXYLINE_BENCH_PROXIES", 1_000_000)
	h := envInt("PROXYLINE_BENCH_HISTORY", 4)
	now := time.Now()
	spec := testdb.Spec{Proxies: n, History: h, Days: 30, Sources: 20, Now: now}
	for _, engine := range testdb.Engines {
		b.Run(engine, func(b *testing.B) {
			db := testdb.Kept(b, engine, fmt.Sprintf("scale_%d_%d", n, h))
			start := time.Now()
			spec, reused, err := testdb.Prepare(context.Background(), db, spec)
			if err != nil {
				b.Fatal(err)
			}
			if reused {
				b.Logf("%s: reused the pool generated at %v (%s), counters undone in %v", engine, spec.Now.Round(time.Second), testdb.KeepEnv, time.Since(start).Round(time.Millisecond))
			} else {
				b.Logf("%s: generated %d proxies and %d history rows in %v", engine, n, n*h, time.Since(start).Round(time.Second))
			}
			start = time.Now()
			// The pool's counters (pool.CountsVersion) on the generated pool: minutes on a loaded
			// machine, more than OpenAt's bound.
			mctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			mst, err := queue.Open(mctx, queue.Config{Database: db})
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			mst.Close()
			b.Logf("%s: migration to the pool's counters in %v", engine, time.Since(start).Round(time.Millisecond))
			st := testdb.OpenAt(b, db, queue.ReadOnly)
			srv, err := api.New(api.Config{Store: st, QueryTimeout: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			benchQueries(b, srv, st, spec)
			benchCLI(b, db)
		})
	}
}

// benchQueries times each query; a query that fails or finds nothing it should fails the run.
func benchQueries(b *testing.B, srv *api.Server, st *queue.Store, spec testdb.Spec) {
	n := spec.Proxies
	deep := deepCursor(b, srv)
	get := func(name, target string) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1"+target, nil))
				if w.Code != 200 {
					b.Fatalf("GET %s: %d %.300s", target, w.Code, w.Body.String())
				}
			}
		})
	}
	get("proxies", "/api/v1/proxies")
	get("proxies_limit1000", "/api/v1/proxies?limit=1000")
	get("proxies_page_5000", "/api/v1/proxies?cursor="+deep)
	get("proxies_protocol_https", "/api/v1/proxies?protocol=https")
	get("proxies_country_SG", "/api/v1/proxies?country=SG")
	get("proxies_country_none", "/api/v1/proxies?country=ZZ")
	get("proxies_anonymity_transparent", "/api/v1/proxies?anonymity=transparent")
	get("proxies_max_latency_30ms", "/api/v1/proxies?max_latency=30ms")
	get("proxies_checked_within_1h", "/api/v1/proxies?checked_within=1h")
	get("proxies_all_filters", "/api/v1/proxies?protocol=socks5&country=DE&anonymity=elite&max_latency=1s&checked_within=7d")
	get("proxies_nothing_matches", "/api/v1/proxies?protocol=socks4a")
	get("proxies_class_all", "/api/v1/proxies?class=all")
	get("proxies_class_refused", "/api/v1/proxies?class=refused")
	get("pick_fastest", "/api/v1/pick")
	get("pick_random_socks5", "/api/v1/pick?policy=random&protocol=socks5")
	get("history", "/api/v1/proxies/"+spec.Addr(n/2)+"/history")
	get("sources", "/api/v1/sources")
	ctx := context.Background()
	b.Run("status_Store.Status", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.Status(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("export_pool.List_alive", func(b *testing.B) {
		for b.Loop() {
			if es, err := pool.List(ctx, st.DB(), false); err != nil || len(es) == 0 {
				b.Fatal(len(es), err)
			}
		}
	})
	b.Run("metrics_pool.Size", func(b *testing.B) {
		for b.Loop() {
			if _, err := pool.Size(ctx, st.DB()); err != nil {
				b.Fatal(err)
			}
		}
	})
	m, err := metrics.New(metrics.Config{Store: st, SourceTimeout: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	scrape := func() {
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil))
		if w.Code != 200 || !strings.Contains(w.Body.String(), "proxyline_database_up 1") {
			b.Fatalf("GET /metrics: %d %.300s", w.Code, w.Body.String())
		}
	}
	scrape() // the first reads the sources too; the next ones within a minute serve that reading
	b.Run("metrics_scrape", func(b *testing.B) {
		for b.Loop() {
			scrape()
		}
	})
}

// deepCursor pages through the first 5,000 live proxies and returns the cursor after them (or
// after the last page of a smaller pool).
func deepCursor(b *testing.B, srv *api.Server) string {
	b.Helper()
	cursor := ""
	for range 5 {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1/api/v1/proxies?limit=1000&cursor="+cursor, nil))
		var page api.Page
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &page) != nil {
			b.Fatalf("paging: %d %.300s", w.Code, w.Body.String())
		}
		if page.NextCursor == "" {
			break // a small pool (PROXYLINE_BENCH_PROXIES)
		}
		cursor = page.NextCursor
	}
	return cursor
}
