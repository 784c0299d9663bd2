package pool_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// The pool is exercised on both engines, through the queue's adapters, by internal/queue's tests;
// these tests cover its own logic on a real SQLite file.

func TestMain(m *testing.M) { testkit.Main(m) }

// sqlDB adapts *sql.DB to pool.DB (the queue package has the production adapters).
type sqlDB struct{ db *sql.DB }

func (d sqlDB) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	r, err := d.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

func (d sqlDB) Query(ctx context.Context, q string, args ...any) (pool.Rows, error) {
	return d.db.QueryContext(ctx, q, args...)
}

func openDB(t *testing.T) pool.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "pool.db")+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	d := sqlDB{db}
	if !pool.Pending(context.Background(), d) {
		t.Fatal("a new database has no pending migration")
	}
	applied, err := pool.Migrate(context.Background(), d, pool.SQLite)
	if err != nil || len(applied) == 0 {
		t.Fatalf("migrate: %v %v", applied, err)
	}
	again, err := pool.Migrate(context.Background(), d, pool.SQLite)
	if err != nil || len(again) != 0 || pool.Pending(context.Background(), d) {
		t.Fatalf("second migrate applied %v, %v", again, err)
	}
	return d
}

func TestRecordBatchesAndDedupes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		n       int // distinct proxies
		dupes   int // extra entries repeating a key with other credentials
		alive   func(i int) bool
		wantRow int64
	}{
		{"one", 1, 0, func(int) bool { return true }, 1},
		{"exactly one batch", 500, 0, func(i int) bool { return i%2 == 0 }, 500},
		{"several batches", 1201, 0, func(i int) bool { return i%3 == 0 }, 1201},
		{"same key twice in a batch", 10, 3, func(int) bool { return false }, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openDB(t)
			ctx := context.Background()
			var cs []pool.Check
			at := time.Now()
			for i := range tt.n {
				p := proxy.Proxy{Scheme: proxy.HTTP, Host: fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250), Port: 8080}
				class := check.Refused
				if tt.alive(i) {
					class = check.Alive
				}
				cs = append(cs, pool.Check{Given: p, Result: check.Result{Proxy: p, Class: class, CheckedAt: at, Total: time.Duration(tt.n-i) * time.Millisecond}})
			}
			for i := range tt.dupes {
				p := cs[i].Given
				p.User, p.Password = "u", "p"
				cs = append(cs, pool.Check{Given: p, Result: check.Result{Proxy: p, Class: check.Alive, CheckedAt: at}})
			}
			for range 2 { // the same job twice: nothing doubles
				if err := pool.Record(ctx, db, pool.Source{JobID: 7, Attempt: 1, Worker: "w"}, cs); err != nil {
					t.Fatal(err)
				}
			}
			s, err := pool.Count(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if s.Total != tt.wantRow || s.History != tt.wantRow {
				t.Errorf("stats %+v, want %d current and history rows", s, tt.wantRow)
			}
			live, err := pool.List(ctx, db, false)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(live)) != s.Alive {
				t.Errorf("List gave %d live, Count %d", len(live), s.Alive)
			}
			for i := 1; i < len(live); i++ {
				if live[i].Total < live[i-1].Total {
					t.Fatalf("List not fastest first at %d: %v after %v", i, live[i].Total, live[i-1].Total)
				}
			}
			if tt.dupes > 0 {
				// The later entry of a key wins: the ones with credentials, alive.
				if s.Alive != int64(tt.dupes) {
					t.Errorf("alive %d, want the %d later duplicates", s.Alive, tt.dupes)
				}
				for _, e := range live {
					if e.Proxy != "http://u:p@"+e.Addr {
						t.Errorf("entry %q, want the credentials of the later duplicate", e.Proxy)
					}
				}
			}
		})
	}
}

func TestBareProxyKeepsItsKeyAndGetsItsProtocol(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ctx := context.Background()
	given := proxy.Proxy{Host: "127.0.0.9", Port: 1080}
	found := given
	found.Scheme = proxy.SOCKS5
	rec := func(job int64, r check.Result) {
		t.Helper()
		if err := pool.Record(ctx, db, pool.Source{JobID: job, Attempt: 1}, []pool.Check{{Given: given, Result: r}}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	rec(1, check.Result{Proxy: given, Class: check.Timeout, CheckedAt: now})
	rec(2, check.Result{Proxy: found, Class: check.Alive, CheckedAt: now.Add(time.Second)})
	es, err := pool.List(ctx, db, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Scheme != "" || es[0].Protocol != "socks5" || es[0].Proxy != "socks5://127.0.0.9:1080" || es[0].Class != check.Alive {
		t.Errorf("entries %+v", es)
	}
}

func TestLiveVersionAndPassive(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ctx := context.Background()
	v0, err := pool.LiveVersion(ctx, db)
	if err != nil || v0 != (pool.Version{}) {
		t.Fatalf("empty pool version %+v %v", v0, err)
	}
	p := proxy.Proxy{Scheme: proxy.HTTP, Host: "127.0.0.9", Port: 8080}
	at := time.Now()
	rec := func(job int64, at time.Time) {
		t.Helper()
		if err := pool.Record(ctx, db, pool.Source{JobID: job, Attempt: 1}, []pool.Check{{Given: p,
			Result: check.Result{Proxy: p, Class: check.Alive, CheckedAt: at}}}); err != nil {
			t.Fatal(err)
		}
	}
	rec(1, at)
	v1, err := pool.LiveVersion(ctx, db)
	if err != nil || v1 == v0 || v1.Rows != 1 {
		t.Fatalf("after a check: %+v %v", v1, err)
	}
	rec(2, at.Add(time.Second))
	if v2, _ := pool.LiveVersion(ctx, db); v2 == v1 {
		t.Fatalf("a newer check did not change the version %+v", v2)
	}
	fs := []pool.PassiveFailure{{Addr: p.Addr(), Scheme: "http", At: at, Err: "a"},
		{Addr: p.Addr(), Scheme: "http", At: at.Add(time.Second), Err: "b"}, {Addr: "127.0.0.10:1", Scheme: "socks5", At: at, Err: "c"}}
	for range 2 {
		if err := pool.RecordPassive(ctx, db, fs); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.Query(ctx, `SELECT failures, last_err FROM proxyline_passive WHERE addr = ?`, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int64
	var last string
	if !rows.Next() || rows.Scan(&n, &last) != nil || n != 4 || last != "b" {
		t.Errorf("passive row: %d %q, want 4 failures, last b", n, last)
	}
}
