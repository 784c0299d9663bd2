package probe

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// needService skips when addr is unreachable, but fails under CI where the service must run.
func needService(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s unreachable under CI: %v", addr, err)
	}
	t.Skipf("%s unreachable: %v", addr, err)
}

func TestCommand(t *testing.T) {
	t.Parallel()
	env := os.Environ()
	cases := []struct {
		name    string
		spec    CommandSpec
		want    float64
		wantErr string
	}{
		{"plain", CommandSpec{Sh: "echo ' 42 '"}, 42, ""},
		{"json", CommandSpec{Sh: `echo '{"jobs":{"completed":7}}'`, JSON: "jobs.completed"}, 7, ""},
		{"json array length", CommandSpec{Sh: `echo '{"a":[1,2,3]}'`, JSON: "a"}, 3, ""},
		{"argv", CommandSpec{Argv: []string{"printf", "3.5"}}, 3.5, ""},
		{"not a number", CommandSpec{Sh: "echo nope"}, 0, "is not a number"},
		{"missing field", CommandSpec{Sh: `echo '{}'`, JSON: "x"}, 0, `no field "x"`},
		{"fails", CommandSpec{Sh: "echo boom >&2; exit 3"}, 0, "boom"},
		{"timeout kills group", CommandSpec{Sh: "sleep 30 & sleep 30", Timeout: 200 * time.Millisecond}, 0, "stopped before it finished"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.spec.Env = env
			start := time.Now()
			got, err := Command(context.Background(), c.spec)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				if time.Since(start) > 5*time.Second {
					t.Fatalf("took %v", time.Since(start))
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "q.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`create table river_job(id integer primary key, state text); insert into river_job(state) values ('completed'),('completed'),('running')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ctx := context.Background()
	n, err := SQLCount(ctx, "sqlite", path, "select count(*) from river_job where state='completed'")
	if err != nil || n != 2 {
		t.Fatalf("count = %v, %v", n, err)
	}
	rows, err := SQLRows(ctx, "sqlite", path, "select id, state from river_job order by id")
	if err != nil || len(rows) != 3 || rows[2][1] != "running" {
		t.Fatalf("rows = %v, %v", rows, err)
	}
	if _, err := SQLCount(ctx, "sqlite", path, "select id from river_job"); err == nil {
		t.Fatal("three rows accepted as a count")
	}
	if _, err := SQLCount(ctx, "sqlite", filepath.Join(t.TempDir(), "missing.db"), "select 1"); err == nil || !strings.Contains(err.Error(), "missing.db") {
		t.Fatalf("missing database: %v", err)
	}
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	needService(t, "127.0.0.1:5432")
	ctx := context.Background()
	dsn := "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	table := fmt.Sprintf("killtest_probe_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "create table "+table+" (id int, state text)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "drop table "+table) })
	if _, err := conn.Exec(ctx, "insert into "+table+" values (1,'a'),(2,'a'),(3,'b')"); err != nil {
		t.Fatal(err)
	}
	n, err := SQLCount(ctx, "postgres", dsn, "select count(*) from "+table+" where state='a'")
	if err != nil || n != 2 {
		t.Fatalf("count = %v, %v", n, err)
	}
	rows, err := SQLRows(ctx, "postgres", dsn, "select id, state from "+table+" order by id")
	if err != nil || len(rows) != 3 || rows[0][0] != "1" || rows[2][1] != "b" {
		t.Fatalf("rows = %v, %v", rows, err)
	}
}

func TestRedis(t *testing.T) {
	t.Parallel()
	needService(t, "127.0.0.1:6379")
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer c.Close()
	p := fmt.Sprintf("killtest-probe-%d-", time.Now().UnixNano())
	keys := []string{p + "l1", p + "l2", p + "h", p + "z", p + "s"}
	t.Cleanup(func() { c.Del(context.Background(), keys...) })
	if err := c.RPush(ctx, keys[0], "a", "b").Err(); err != nil {
		t.Fatal(err)
	}
	c.RPush(ctx, keys[1], "c")
	c.HSet(ctx, keys[2], "f1", 1, "f2", 2)
	c.ZAdd(ctx, keys[3], redis.Z{Score: 1, Member: "m"})
	c.SAdd(ctx, keys[4], "x", "y", "z")
	cases := []struct {
		op   string
		keys []string
		want float64
	}{
		{"llen", []string{keys[0], keys[1], p + "missing"}, 3},
		{"HLEN", []string{keys[2]}, 2},
		{"zcard", []string{keys[3]}, 1},
		{"scard", []string{keys[4]}, 3},
	}
	for _, tc := range cases {
		got, err := Redis(ctx, "", 0, tc.op, tc.keys)
		if err != nil || got != tc.want {
			t.Errorf("%s %v = %v, %v; want %v", tc.op, tc.keys, got, err, tc.want)
		}
	}
	if _, err := Redis(ctx, "", 0, "llen", []string{keys[2]}); err == nil {
		t.Error("LLEN of a hash did not fail")
	}
}

func FuzzParseNumber(f *testing.F) {
	f.Add([]byte("42\n"), "")
	f.Add([]byte(`{"a":[{"b":"3"}]}`), "a.0.b")
	f.Add([]byte(`{"a":true}`), "a")
	f.Fuzz(func(t *testing.T, out []byte, path string) {
		_, _ = ParseNumber(out, path)
	})
}
