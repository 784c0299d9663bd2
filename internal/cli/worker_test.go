package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testkit"
)

// enqueueList writes n proxies to a list and enqueues them into db in chunks of chunk, through
// the real command.
func enqueueList(t *testing.T, db string, n, chunk int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "http://127.0.0.%d:%d\n", 10+i%200, 8000+i)
	}
	list := writeTestFile(t, t.TempDir(), "list.txt", b.String(), 0o600)
	code, out, errOut := runMain(t, procOpts{}, "enqueue", "--database", db, "--chunk", fmt.Sprint(chunk), "--judge", "http://127.0.0.2:1/", list)
	if code != 0 {
		t.Fatalf("enqueue exit %d: %s %s", code, out, errOut)
	}
}

// jobCounts reads the jobs of db by state, and how many have an attempt or an error recorded.
func jobCounts(t *testing.T, db string) (map[string]int64, int64) {
	t.Helper()
	ctx := context.Background()
	st, err := queue.Open(ctx, queue.Config{Database: db, Access: queue.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := st.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s.Jobs, countRows(t, db, `SELECT count(*) FROM river_job WHERE attempt > 0 OR errors IS NOT NULL`)
}

// countRows runs a count query on the SQLite queue at db (read-only).
func countRows(t *testing.T, db, query string) int64 {
	t.Helper()
	ctx := context.Background()
	st, err := queue.Open(ctx, queue.Config{Database: db, Access: queue.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.DB().Query(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int64
	if !rows.Next() || rows.Scan(&n) != nil {
		t.Fatalf("%s: no count", query)
	}
	return n
}

// TestWorkerRefusesBrokenExec: a worker whose --exec program cannot be found, or whose template is
// invalid, exits 2 at start with a clear message, before it opens the database: the queue is
// untouched (and a database that does not exist is not created).
func TestWorkerRefusesBrokenExec(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "q.db")
	enqueueList(t, db, 6, 2)
	notExec := writeTestFile(t, t.TempDir(), "tool", "#!/bin/sh\n", 0o644)
	tests := []struct {
		exec string
		says []string
	}{
		{"nonexistent-cmd {in}", []string{`"nonexistent-cmd"`, "not found"}},
		{"/nonexistent/dir/tool {in}", []string{"/nonexistent/dir/tool", "no such file"}},
		{notExec + " {in}", []string{notExec, "permission denied"}},
		{"sh -c 'cp {in} {out}' | tee", []string{"--exec", "needs a shell"}},
		{"tool {nope}", []string{"unknown placeholder {nope}"}},
	}
	for _, tt := range tests {
		code, _, errOut := runMain(t, procOpts{}, "worker", "--database", db, "--exec", tt.exec)
		if code != ExitUsage {
			t.Errorf("--exec %q: exit %d, want %d", tt.exec, code, ExitUsage)
		}
		for _, s := range tt.says {
			if !strings.Contains(errOut, s) {
				t.Errorf("--exec %q: stderr does not say %q:\n%s", tt.exec, s, errOut)
			}
		}
		if strings.Contains(errOut, "worker started") {
			t.Errorf("--exec %q: the worker started:\n%s", tt.exec, errOut)
		}
	}
	jobs, used := jobCounts(t, db)
	if jobs["available"] != 3 || used != 0 {
		t.Errorf("jobs %v, %d with an attempt or error: want all 3 available and untouched", jobs, used)
	}
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	if code, _, _ := runMain(t, procOpts{}, "worker", "--database", fresh, "--exec", "nonexistent-cmd {in}"); code != ExitUsage {
		t.Errorf("fresh database: exit %d", code)
	}
	if _, err := os.Stat(fresh); err == nil {
		t.Errorf("the refused worker created %s", fresh)
	}
}

// TestWorkerSetupBreaksAtRunTime: the --exec program is there at start and removed before any
// job: each job's run fails on the worker's own set-up, which is logged at ERROR and hands the
// job back without using an attempt; after 5 such failures in a row (about 15 s) the worker stops
// with exit 3, and every job is still to run.
func TestWorkerSetupBreaksAtRunTime(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "q.db")
	tool := writeTestFile(t, t.TempDir(), "tool", "#!/bin/sh\ncp \"$1\" \"$2\"\n", 0o755)
	w := startMain(t, procOpts{}, "worker", "--database", db, "--concurrency", "2", "--exec", tool+" {in} {out}")
	testkit.WaitFor(t, time.Minute, "the worker to start", func() bool { return strings.Contains(w.stderr.String(), "worker started") })
	if err := os.Remove(tool); err != nil {
		t.Fatal(err)
	}
	enqueueList(t, db, 8, 2)
	code := w.wait(t, 3*time.Minute)
	log := w.stderr.String()
	if code != ExitError {
		t.Errorf("worker exit %d, want %d", code, ExitError)
	}
	for _, want := range []string{"level=ERROR", "worker set-up failed", "without using an attempt", "worker cannot work", tool} {
		if !strings.Contains(log, want) {
			t.Errorf("worker log does not say %q", want)
		}
	}
	jobs, used := jobCounts(t, db)
	if jobs["available"]+jobs["scheduled"] != 4 || jobs["discarded"] != 0 || jobs["retryable"] != 0 || used != 0 {
		t.Errorf("jobs %v, %d with an attempt or error: want all 4 still to run, untouched", jobs, used)
	}
}

// TestWorkerToolAlwaysFails: an --exec tool that runs but fails on every chunk (`exit 1`,
// whatever it is given) is the worker's set-up, not the proxies' fault: once it failed on 3
// chunks in a row before any job completed, its failures are logged at ERROR and hand the jobs
// back without using an attempt, and the worker stops with exit 3. The first failures use one
// attempt each, as a bad chunk's would: no job is discarded, none used more than one attempt.
// Before, the worker discarded the whole queue, five attempts a job, at INFO.
func TestWorkerToolAlwaysFails(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "q.db")
	tool := writeTestFile(t, t.TempDir(), "tool", "#!/bin/sh\necho 'tool: cannot work' >&2\nexit 1\n", 0o755)
	enqueueList(t, db, 12, 2)
	w := startMain(t, procOpts{}, "worker", "--database", db, "--concurrency", "2", "--exec", tool+" {in} {out}")
	code := w.wait(t, 3*time.Minute)
	log := w.stderr.String()
	if code != ExitError {
		t.Errorf("worker exit %d, want %d\n%s", code, ExitError, log)
	}
	for _, want := range []string{"level=ERROR", "worker set-up failed", "without using an attempt",
		"the checker failed on 3 chunks in a row and has not checked one since this worker started", "worker cannot work"} {
		if !strings.Contains(log, want) {
			t.Errorf("worker log does not say %q\n%s", want, log)
		}
	}
	jobs, _ := jobCounts(t, db)
	if jobs["discarded"] != 0 || jobs["completed"] != 0 || jobs["cancelled"] != 0 {
		t.Errorf("jobs %v: want none discarded, completed or cancelled", jobs)
	}
	if n := countRows(t, db, `SELECT count(*) FROM river_job WHERE coalesce(json_array_length(errors), 0) > 1`); n != 0 {
		t.Errorf("%d jobs used more than one attempt on the tool's failures", n)
	}
}

// TestWorkerFlagMessages: flag errors name the flags, not Go fields.
func TestWorkerFlagMessages(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"--rescue-after", "1m"}, "--rescue-after 1m0s must be longer than --job-timeout 5m0s"},
		{[]string{"--rescue-after", "1m", "--job-timeout", "2m"}, "--rescue-after 1m0s must be longer than --job-timeout 2m0s"},
		{[]string{"--job-timeout", "-1s"}, "--job-timeout and --rescue-after must not be negative"},
	} {
		var stderr bytes.Buffer
		env := &Env{Stdout: &bytes.Buffer{}, Stderr: &stderr}
		args := append([]string{"worker", "--database", filepath.Join(t.TempDir(), "q.db")}, tt.args...)
		if code := run(context.Background(), env, args); code != ExitUsage || !strings.Contains(stderr.String(), tt.says) {
			t.Errorf("%v: exit %d, stderr %q; want %d saying %q", tt.args, code, stderr.String(), ExitUsage, tt.says)
		}
		if strings.Contains(stderr.String(), "RescueStuckJobsAfter") {
			t.Errorf("%v: stderr names a Go field: %s", tt.args, stderr.String())
		}
	}
}
