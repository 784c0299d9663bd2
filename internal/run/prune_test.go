package run

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
)

// TestPrunerRetention: history older than max_age goes, then each proxy keeps its newest
// max_rows_per_proxy rows; the steps are small (batch 3) and a pass covers everything.
func TestPrunerRetention(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ps := candidates(t, "http://127.0.0.3:1", "http://127.0.0.4:1", "socks5://127.0.0.5:1", "http://127.0.0.6:1")
	// 10 checks per proxy, one a day, the newest today.
	for day := range 10 {
		var checks []pool.Check
		for _, p := range ps {
			checks = append(checks, pool.Check{Given: p, Result: check.Result{Proxy: p, Class: check.Alive,
				CheckedAt: now.Add(-time.Duration(9-day) * 24 * time.Hour)}})
		}
		if err := pool.Record(ctx, st.DB(), pool.Source{JobID: int64(day + 1), Attempt: 1, Worker: "t"}, checks); err != nil {
			t.Fatal(err)
		}
	}
	p := newPruner(RetentionConfig{MaxAge: Duration(7*24*time.Hour + time.Hour), MaxRowsPerProxy: 5, Interval: Duration(time.Hour), Batch: 3},
		st, discardLog())
	p.now = func() time.Time { return now }
	byAge, byCount, err := p.once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Older than 7 days and 1 hour: days 8 and 9 back, 2 rows of each of 4 proxies.
	if byAge != 8 {
		t.Errorf("pruned %d rows by age, want 8", byAge)
	}
	// 8 rows left per proxy, 5 kept: 3 each.
	if byCount != 12 {
		t.Errorf("pruned %d rows by count, want 12", byCount)
	}
	for _, x := range ps {
		rows, err := st.DB().Query(ctx, `SELECT count(*), min(checked_at) FROM proxyline_check WHERE addr = ? AND scheme = ?`, x.Addr(), string(x.Scheme))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		var oldest int64
		rows.Next()
		if err := rows.Scan(&n, &oldest); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if want := now.Add(-4 * 24 * time.Hour).UnixMilli(); n != 5 || oldest != want {
			t.Errorf("%s: %d rows, oldest %d; want the 5 newest (oldest %d)", x, n, oldest, want)
		}
	}
	// A second pass finds nothing; the current rows are untouched.
	if a, c, err := p.once(ctx); err != nil || a+c != 0 {
		t.Fatalf("second pass pruned %d+%d, %v", a, c, err)
	}
	if es, err := pool.List(ctx, st.DB(), true); err != nil || len(es) != len(ps) {
		t.Fatalf("pool has %d proxies after pruning, %v; want %d", len(es), err, len(ps))
	}
	// The running pruner stops promptly.
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Stop(sctx); err != nil {
		t.Fatal(err)
	}
}
