package pool_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testdb"
	"github.com/proxyline/proxyline/proxy"
)

// The counters (counts.go) against the queries they replace, which count every row: after random
// writes of every kind (new proxies, re-checks that flip a class, sightings before and after
// results, re-runs of a job, deletes), on both engines.

// reference is what the counters must say, counted the slow way.
type reference struct {
	stats  pool.Stats
	sizes  pool.Sizes
	yields []pool.SourceYield
}

func slowCounts(t *testing.T, db pool.DB) reference {
	t.Helper()
	r := reference{stats: pool.Stats{ByClass: map[string]int64{}, ByProtocol: map[string]int64{}},
		sizes: pool.Sizes{ByClass: map[check.Class]int64{}}}
	query(t, db, `SELECT class, protocol, anonymity, count(*) FROM proxyline_proxy GROUP BY class, protocol, anonymity
		ORDER BY class, protocol, anonymity`, func(rows pool.Rows) error {
		var class, protocol, anon string
		var n int64
		if err := rows.Scan(&class, &protocol, &anon, &n); err != nil {
			return err
		}
		r.stats.ByClass[class] += n
		r.stats.Total += n
		r.sizes.ByClass[check.Class(class)] += n
		if class == string(check.Alive) {
			r.stats.Alive += n
			r.stats.ByProtocol[protocol] += n
			r.sizes.Live = append(r.sizes.Live, pool.LiveSize{Protocol: protocol, Anonymity: check.Anonymity(anon), Proxies: n})
		}
		return nil
	})
	query(t, db, `SELECT count(*) FROM proxyline_check`, func(rows pool.Rows) error { return rows.Scan(&r.stats.History) })
	query(t, db, `SELECT s.source, count(*), count(p.addr), COALESCE(sum(CASE WHEN p.class = 'alive' THEN 1 ELSE 0 END), 0),
			max(s.last_seen)
		FROM proxyline_source_proxy s LEFT JOIN proxyline_proxy p ON p.addr = s.addr AND p.scheme = s.scheme
		GROUP BY s.source ORDER BY 4 DESC, s.source`, func(rows pool.Rows) error {
		var y pool.SourceYield
		var last int64
		if err := rows.Scan(&y.Source, &y.Candidates, &y.Checked, &y.Alive, &last); err != nil {
			return err
		}
		y.LastSeen = time.UnixMilli(last).UTC()
		r.yields = append(r.yields, y)
		return nil
	})
	return r
}

func query(t *testing.T, db pool.DB, q string, each func(pool.Rows) error) {
	t.Helper()
	rows, err := db.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// checkCounts compares the counters with the slow counts; lastSeen says whether the sources'
// last_seen must match too (a deleted sighting does not move it back).
func checkCounts(t *testing.T, db pool.DB, when string, lastSeen bool) {
	t.Helper()
	ctx := context.Background()
	want := slowCounts(t, db)
	stats, err := pool.Count(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stats, want.stats) {
		t.Errorf("%s: Count = %+v, counted %+v", when, stats, want.stats)
	}
	sizes, err := pool.Size(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sizes, want.sizes) {
		t.Errorf("%s: Size = %+v, counted %+v", when, sizes, want.sizes)
	}
	ys, err := pool.SourceYields(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if !lastSeen {
		for i := range ys {
			ys[i].LastSeen = time.Time{}
		}
		for i := range want.yields {
			want.yields[i].LastSeen = time.Time{}
		}
	}
	if !reflect.DeepEqual(ys, want.yields) {
		t.Errorf("%s: SourceYields = %+v, counted %+v", when, ys, want.yields)
	}
	checkVersion(t, db, when)
}

// checkVersion compares pool.LiveVersion, which reads the counters and the end of an index, with
// the current rows counted and the history's newest check found the slow way.
func checkVersion(t *testing.T, db pool.DB, when string) {
	t.Helper()
	v, err := pool.LiveVersion(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	var want pool.Version
	query(t, db, `SELECT count(*) FROM proxyline_proxy`, func(rows pool.Rows) error { return rows.Scan(&want.Rows) })
	query(t, db, `SELECT checked_at FROM proxyline_check ORDER BY checked_at DESC LIMIT 1`, func(rows pool.Rows) error {
		return rows.Scan(&want.Newest)
	})
	if v != want {
		t.Errorf("%s: LiveVersion = %+v, counted %+v", when, v, want)
	}
}

// workload writes random results and sightings over a small address space (so that most writes
// hit proxies already there).
type workload struct {
	r   *rand.Rand
	job int64
	now time.Time
}

var (
	classes   = []check.Class{check.Alive, check.Alive, check.Timeout, check.Refused, check.BadResponse}
	schemes   = []proxy.Scheme{proxy.Unknown, proxy.HTTP, proxy.SOCKS5}
	anonymity = []check.Anonymity{check.Elite, check.Anonymous, check.Transparent}
)

func (w *workload) proxy() proxy.Proxy {
	return proxy.Proxy{Scheme: schemes[w.r.IntN(len(schemes))], Host: fmt.Sprintf("10.9.0.%d", 1+w.r.IntN(60)), Port: 8080}
}

func (w *workload) checks(n int) []pool.Check {
	var cs []pool.Check
	for range n {
		p := w.proxy()
		found := p
		if found.Scheme == proxy.Unknown {
			found.Scheme = []proxy.Scheme{proxy.HTTP, proxy.SOCKS4}[w.r.IntN(2)]
		}
		c := classes[w.r.IntN(len(classes))]
		res := check.Result{Proxy: found, Class: c, CheckedAt: w.now.Add(time.Duration(w.r.IntN(1000)) * time.Second), Total: time.Second}
		if c == check.Alive {
			res.Anonymity = anonymity[w.r.IntN(len(anonymity))]
		}
		cs = append(cs, pool.Check{Given: p, Result: res})
	}
	return cs
}

func (w *workload) sightings(n int) []pool.Sighting {
	var ss []pool.Sighting
	for range n {
		ss = append(ss, pool.Sighting{Source: fmt.Sprintf("src-%d", w.r.IntN(5)), Proxy: w.proxy(),
			Seen: w.now.Add(time.Duration(w.r.IntN(1000)) * time.Second)})
	}
	return ss
}

// step does one random write through db.
func (w *workload) step(db pool.DB) error {
	ctx := context.Background()
	var err error
	switch k := w.r.IntN(10); {
	case k < 5:
		w.job++
		job := w.job
		if w.r.IntN(4) == 0 && job > 1 {
			job = 1 + w.r.Int64N(job-1) // a re-run of an earlier job: its history rows are replaced
		}
		err = pool.Record(ctx, db, pool.Source{JobID: job, Attempt: 1, Worker: "w"}, w.checks(1+w.r.IntN(8)))
	case k < 8:
		err = pool.RecordSightings(ctx, db, w.sightings(1+w.r.IntN(8)))
	case k == 8:
		_, err = db.Exec(ctx, `DELETE FROM proxyline_proxy WHERE addr = ?`, w.proxy().Addr())
		if err == nil {
			_, err = db.Exec(ctx, `DELETE FROM proxyline_check WHERE job_id = ?`, 1+w.r.Int64N(w.job+1))
		}
	default:
		_, err = db.Exec(ctx, `DELETE FROM proxyline_source_proxy WHERE source = ? AND addr = ?`,
			fmt.Sprintf("src-%d", w.r.IntN(5)), w.proxy().Addr())
	}
	return err
}

// steps does up to three random writes of one kind, as one transaction of a worker or a scrape.
func (w *workload) steps(db pool.DB) error {
	ctx := context.Background()
	kind := w.r.IntN(4)
	for range 1 + w.r.IntN(3) {
		var err error
		switch kind {
		case 0, 1:
			w.job++
			err = pool.Record(ctx, db, pool.Source{JobID: w.job, Attempt: 1, Worker: "w"}, w.checks(1+w.r.IntN(8)))
		case 2:
			err = pool.RecordSightings(ctx, db, w.sightings(1+w.r.IntN(8)))
		default:
			err = w.step(db)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func TestCountsMatchCounting(t *testing.T) {
	t.Parallel()
	for _, engine := range testdb.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := testdb.Open(t, engine)
			db := st.DB()
			checkCounts(t, db, "empty", true)
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			w := &workload{r: rand.New(rand.NewPCG(seed, 1)), now: time.Now()}
			deleted := false
			for i := range 300 {
				if err := w.step(db); err != nil {
					t.Fatal(err)
				}
				if i%25 == 24 {
					checkCounts(t, db, fmt.Sprintf("after %d writes", i+1), !deleted)
					deleted = true // from here on, a sighting may have been deleted
				}
			}
		})
	}
}

// TestCountsMigration fills a pool without the counters (the migration undone), then migrates: the
// migration counts what is there, and the triggers keep counting after it.
func TestCountsMigration(t *testing.T) {
	t.Parallel()
	for _, engine := range testdb.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dbname := testdb.Database(t, engine)
			st := testdb.OpenAt(t, dbname, queue.Migrate)
			d := pool.SQLite
			if engine == queue.EnginePostgres {
				d = pool.Postgres
			}
			if err := pool.Unmigrate(context.Background(), st.DB(), d, pool.CountsVersion); err != nil {
				t.Fatal(err)
			}
			w := &workload{r: rand.New(rand.NewPCG(7, 7)), now: time.Now()}
			for range 200 {
				if err := w.step(st.DB()); err != nil {
					t.Fatal(err)
				}
			}
			st.Close()
			st = testdb.OpenAt(t, dbname, queue.Migrate)
			checkCounts(t, st.DB(), "after the migration", true)
			for range 100 {
				if err := w.step(st.DB()); err != nil {
					t.Fatal(err)
				}
			}
			checkCounts(t, st.DB(), "after more writes", false)
		})
	}
}

// pgTx adapts a pgx transaction to pool.DB ('?' placeholders numbered), for writes that span
// several statements, as a worker's job does.
type pgTx struct{ tx pgx.Tx }

func (d pgTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := d.tx.Exec(ctx, number(q), args...)
	return tag.RowsAffected(), err
}

func (d pgTx) Query(ctx context.Context, q string, args ...any) (pool.Rows, error) {
	rows, err := d.tx.Query(ctx, number(q), args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error { r.Rows.Close(); return r.Rows.Err() }

// number turns '?' into $1, $2, ... (the pool's statements have no '?' in literals).
func number(q string) string {
	var b []byte
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b = fmt.Appendf(b, "$%d", n)
			continue
		}
		b = append(b, q[i])
	}
	return string(b)
}

// TestCountsConcurrentPostgres runs workers' results and scrapes' sightings in concurrent
// transactions of several statements each (READ COMMITTED, as in production: a worker's
// transaction records results, a scrape's records sightings): the counts stay exact. A
// transaction that deadlocks is retried, as River retries a job (two workers' results for the
// same proxies could always deadlock on the pool's rows).
func TestCountsConcurrentPostgres(t *testing.T) {
	t.Parallel()
	dbname := testdb.Database(t, queue.EnginePostgres)
	st := testdb.OpenAt(t, dbname, queue.Migrate)
	ctx := context.Background()
	pg, err := pgxpool.New(ctx, dbname)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	var wg sync.WaitGroup
	var retries atomic.Int64
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			w := &workload{r: rand.New(rand.NewPCG(uint64(g), 99)), now: time.Now(), job: int64(g) * 1_000_000}
			for range 40 {
				for attempt := 1; ; attempt++ {
					err := pgx.BeginFunc(ctx, pg, func(tx pgx.Tx) error { return w.steps(pgTx{tx}) })
					var pe *pgconn.PgError
					if errors.As(err, &pe) && pe.Code == "40P01" && attempt < 20 {
						retries.Add(1)
						continue // a deadlock: River would retry the job
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkCounts(t, st.DB(), "after concurrent writers", false)
	var shards int
	query(t, st.DB(), `SELECT count(DISTINCT shard) FROM proxyline_history_count`, func(rows pool.Rows) error { return rows.Scan(&shards) })
	t.Logf("history counted in %d shards; %d transactions retried after a deadlock", shards, retries.Load())
}
