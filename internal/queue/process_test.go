package queue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/internal/testkit"
)

// proc is a proxyline process started by a test.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout testkit.Buffer
	stderr testkit.Buffer
	done   chan struct{}
	err    error // set before done is closed
}

// start runs the proxyline binary with args. The test's cleanup kills it (SIGKILL to its pid)
// if it still runs, and waits for it.
func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, exec.Command(proxylineBinary(t), args...))
}

// startCmd starts cmd (proxyline, or a wrapper that execs it) at debug level, as start does.
func startCmd(t testing.TB, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.Env = append(os.Environ(), "PROXYLINE_LOG_LEVEL=debug")
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, lastLines(p.stderr.String(), 40))
		}
	})
	return p
}

// wait waits up to d for the process to exit and returns its exit code (-1 for a signal).
func (p *proc) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s still running after %s", p.name, d)
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	t.Fatalf("%s: %v", p.name, p.err)
	return 0
}

func (p *proc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s to %s: %v", sig, p.name, err)
	}
}

// run runs proxyline to the end and returns its exit code, stdout and stderr.
func run(t testing.TB, d time.Duration, args ...string) (int, string, string) {
	t.Helper()
	p := start(t, args[0], args...)
	code := p.wait(t, d)
	return code, p.stdout.String(), p.stderr.String()
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

func writeList(t testing.TB, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func statusJSON(t testing.TB, db string, args ...string) (int, queue.Status) {
	t.Helper()
	code, out, errOut := run(t, 2*time.Minute, append([]string{"status", "--database", db, "--json"}, args...)...)
	var s queue.Status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json (exit %d): %v\n%s\n%s", code, err, out, errOut)
	}
	return code, s
}

// scalar runs a one-number query.
func scalar(t testing.TB, st *queue.Store, q string, args ...any) int64 {
	t.Helper()
	rows, err := st.DB().Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var n int64
	if !rows.Next() {
		t.Fatalf("%s: no row", q)
	}
	if err := rows.Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// noBusyErrors fails if a process logged a SQLite busy/locked error or any error, but River's
// leader election and notifier, which retry on their own, timing out (their 5 s bounds, passed at
// load 40: "leadership.attemptElect timed out after 5s").
func noBusyErrors(t testing.TB, ps ...*proc) {
	t.Helper()
	for _, p := range ps {
		for _, l := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(l, "SQLITE_BUSY") || strings.Contains(l, "database is locked") || strings.Contains(l, "level=ERROR") && !riverRetriedTimeout(l) {
				t.Errorf("%s logged: %s", p.name, l)
			}
		}
	}
}

// riverRetriedTimeout says whether an error line is River's leader election or notifier timing
// out, which they retry by themselves.
func riverRetriedTimeout(l string) bool {
	return (strings.Contains(l, `msg="leadership.Elector: Error attempting to elect"`) ||
		strings.Contains(l, `msg="notifier.Notifier: Error running listener (will attempt reconnect after backoff)"`)) &&
		(strings.Contains(l, "context deadline exceeded") || strings.Contains(l, "timed out after"))
}

// TestProcessesShareQueue runs three worker processes on one database: every job runs once,
// every proxy gets exactly one current result and one history row, no busy errors, and SIGTERM
// ends each worker with exit 0.
func TestProcessesShareQueue(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			db := database(t, engine)
			l, lines := startLab(t, labConfig(300))
			list := writeList(t, lines)
			code, out, errOut := run(t, time.Minute, "enqueue", "--database", db, "--chunk", "10", "--judge", l.JudgeURL(), "-t", "5s", list)
			if code != 0 {
				t.Fatalf("enqueue exit %d: %s %s", code, out, errOut)
			}
			jobs := int64((len(lines) + 9) / 10)
			if want := fmt.Sprintf("enqueued %d jobs (%d proxies)", jobs, len(lines)); !strings.Contains(out, want) {
				t.Errorf("enqueue said %q, want %q", out, want)
			}
			var ws []*proc
			for i := range 3 {
				ws = append(ws, start(t, fmt.Sprintf("worker%d", i), "worker", "--database", db, "--concurrency", "2"))
			}
			code, s := statusJSON(t, db, "--wait", "90s")
			if code != 0 || s.Unfinished != 0 {
				t.Fatalf("status --wait: exit %d, %+v", code, s)
			}
			if s.Jobs["completed"] != jobs {
				t.Errorf("completed %d of %d jobs: %v", s.Jobs["completed"], jobs, s.Jobs)
			}
			for _, w := range ws {
				w.signal(t, syscall.SIGTERM)
			}
			for _, w := range ws {
				if code := w.wait(t, 30*time.Second); code != 0 {
					t.Errorf("%s exit %d after SIGTERM", w.name, code)
				}
			}
			noBusyErrors(t, ws...)
			st := open(t, db)
			if n := scalar(t, st, `SELECT count(*) FROM river_job WHERE attempt <> 1`); n != 0 {
				t.Errorf("%d jobs ran more than once", n)
			}
			if n := scalar(t, st, `SELECT count(*) FROM proxyline_check`); n != int64(len(lines)) {
				t.Errorf("history rows %d, want %d", n, len(lines))
			}
			if n := scalar(t, st, `SELECT count(*) FROM proxyline_proxy`); n != int64(len(lines)) {
				t.Errorf("current rows %d, want %d", n, len(lines))
			}
			if n := scalar(t, st, `SELECT count(DISTINCT worker) FROM proxyline_check`); n < 2 {
				t.Logf("only %d worker(s) took jobs", n)
			}
			// export lists exactly the live proxies.
			alive := 0
			for _, tr := range l.Truth() {
				if tr.Alive {
					alive++
				}
			}
			code, out, errOut = run(t, time.Minute, "export", "--database", db)
			if got := strings.Count(out, "\n"); code != 0 || got != alive {
				t.Errorf("export: exit %d, %d lines, want %d live proxies\n%s", code, got, alive, errOut)
			}
		})
	}
}

// TestKillWorkerMidChunk SIGKILLs the worker running every job, with a second worker idle: the
// second worker runs them again, handed back by the local rescuer (the dead process, by /proc)
// and not by the heartbeat one, every proxy ends with exactly one current result, and no process
// of the dead worker's tasks survives.
func TestKillWorkerMidChunk(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			db := database(t, engine)
			// The slow proxies hold every check until released, and a check may wait 4 min
			// (-t; the job's timeout is 5 min): worker A still runs all the jobs when it is
			// killed, however long worker B takes to start (30 s at load 35: the old 4 s
			// checks had all completed by then, and nothing was left to run again).
			l, lines := startLab(t, lab.Config{Slow: 40, SlowDelay: 100 * time.Millisecond, HoldSlow: true})
			t.Cleanup(l.ReleaseSlow) // before the lab's Stop (clean-ups run last first)
			list := writeList(t, lines)
			if code, out, errOut := run(t, time.Minute, "enqueue", "--database", db, "--chunk", "10", "--judge", l.JudgeURL(), "-t", "4m", list); code != 0 {
				t.Fatalf("enqueue exit %d: %s %s", code, out, errOut)
			}
			st := open(t, db)
			ctx := context.Background()
			a := start(t, "workerA", "worker", "--database", db, "--concurrency", "4")
			testkit.WaitFor(t, 60*time.Second, "worker A running all 4 jobs", func() bool {
				s, err := st.Status(ctx)
				return err == nil && s.Jobs["running"] == 4
			})
			b := start(t, "workerB", "worker", "--database", db, "--concurrency", "4")
			testkit.WaitFor(t, 60*time.Second, "worker B registered", func() bool {
				s, err := st.Status(ctx)
				return err == nil && s.WorkersAlive == 2
			})
			apid := a.cmd.Process.Pid
			killed := time.Now()
			a.signal(t, syscall.SIGKILL)
			testkit.WaitFor(t, 30*time.Second, "all jobs running again or done", func() bool {
				return scalar(t, st, `SELECT count(*) FROM river_job WHERE attempt = 2 AND state IN ('running', 'completed')`) == 4
			})
			t.Logf("%s: SIGKILL to every job running again: %s", engine, time.Since(killed).Round(time.Millisecond))
			l.ReleaseSlow()
			// Which rescuer handed the jobs back, not how fast (at load 50 the local one took
			// more than 2 s): the local one, by /proc, records that the worker died; the
			// heartbeat one (after --dead-after, 10 s) that it was not heard from.
			if n := scalar(t, st, `SELECT count(*) FROM river_job WHERE `+errorsText(engine)+` LIKE '%died while running the job%'`); n != 4 {
				t.Errorf("%d of 4 jobs handed back by the local rescuer (process gone), want all: %s", n, jobErrors(t, st, engine))
			}
			if code := a.wait(t, 10*time.Second); code != -1 {
				t.Errorf("worker A exit %d, want killed", code)
			}
			if code, s := statusJSON(t, db, "--wait", "60s"); code != 0 || s.Jobs["completed"] != 4 {
				t.Fatalf("status --wait: exit %d, jobs %v", code, s.Jobs)
			}
			if n := scalar(t, st, `SELECT count(*) FROM proxyline_proxy`); n != int64(len(lines)) {
				t.Errorf("current rows %d, want one per proxy (%d)", n, len(lines))
			}
			if n := scalar(t, st, `SELECT count(*) FROM proxyline_check WHERE attempt <> 2`); n != 0 {
				t.Errorf("%d history rows of the killed attempt", n)
			}
			if left := cookieProcesses(t, apid); len(left) > 0 {
				t.Errorf("processes of the dead worker's tasks survive: %v", left)
			}
			b.signal(t, syscall.SIGTERM)
			if code := b.wait(t, 30*time.Second); code != 0 {
				t.Errorf("worker B exit %d", code)
			}
			noBusyErrors(t, b)
		})
	}
}

// errorsText is the SQL expression of river_job.errors as text in engine's dialect.
func errorsText(engine string) string {
	if engine == "postgres" {
		return "coalesce(errors::text, '')"
	}
	return "coalesce(json(errors), '')"
}

// jobErrors lists every job's id, attempt and errors, for a failure's evidence.
func jobErrors(t testing.TB, st *queue.Store, engine string) string {
	t.Helper()
	rows, err := st.DB().Query(context.Background(), `SELECT id, attempt, `+errorsText(engine)+` FROM river_job ORDER BY id`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, attempt int64
		var errs string
		if err := rows.Scan(&id, &attempt, &errs); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "\njob %d attempt %d: %s", id, attempt, errs)
	}
	return b.String()
}

// cookieProcesses lists the live processes whose supervise cookie names owner as their owner
// pid, and the children the owner left (re-parented processes still naming it in PPid cannot
// exist; the cookie is what survives re-parenting).
func cookieProcesses(t testing.TB, owner int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	ns, err := proctab.OwnPIDNamespace() // the workers run in our PID namespace
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte(supervise.CookieEnv + "=" + strconv.FormatUint(ns, 10) + ":" + strconv.Itoa(owner) + ":")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				continue // a zombie runs nothing; its reaper is PID 1 or a subreaper
			}
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.HasPrefix(kv, prefix) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// TestSIGTERMDrains: the first SIGTERM lets running jobs finish within the grace (they complete)
// or hands them back when the grace is too short; a second SIGTERM stops at once. Exit 0 each
// time and nothing is left running.
func TestSIGTERMDrains(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		delay     time.Duration // of the lab's slow proxies
		grace     string
		twice     bool
		completed int64 // jobs completed after the stop; the rest must be available again
		within    time.Duration
	}{
		{"grace long enough: jobs finish", 1500 * time.Millisecond, "20s", false, 2, 15 * time.Second},
		{"grace too short: jobs handed back", 20 * time.Second, "300ms", false, 0, 10 * time.Second},
		{"second signal: stop at once", 20 * time.Second, "60s", true, 0, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := database(t, "sqlite")
			l, lines := startLab(t, slowLab(8, tt.delay))
			list := writeList(t, lines)
			if code, out, errOut := run(t, time.Minute, "enqueue", "--database", db, "--chunk", "4", "--judge", l.JudgeURL(), "-t", "30s", list); code != 0 {
				t.Fatalf("enqueue exit %d: %s %s", code, out, errOut)
			}
			st := open(t, db)
			ctx := context.Background()
			w := start(t, "worker", "worker", "--database", db, "--concurrency", "2", "--grace", tt.grace)
			testkit.WaitFor(t, 60*time.Second, "both jobs running", func() bool {
				s, err := st.Status(ctx)
				return err == nil && s.Jobs["running"] == 2
			})
			stopped := time.Now()
			w.signal(t, syscall.SIGTERM)
			if tt.twice {
				testkit.WaitFor(t, 10*time.Second, "worker logs its stop", func() bool {
					return strings.Contains(w.stderr.String(), "worker stopping")
				})
				w.signal(t, syscall.SIGTERM)
			}
			if code := w.wait(t, 60*time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM", code)
			}
			if d := time.Since(stopped); d > tt.within {
				t.Errorf("stop took %s, want <= %s", d, tt.within)
			}
			s, err := st.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s.Jobs["running"] != 0 || s.Jobs["completed"] != tt.completed || s.Jobs["available"] != 2-tt.completed {
				t.Errorf("after stop: jobs %v, want %d completed, the rest available", s.Jobs, tt.completed)
			}
			if len(s.Workers) != 0 {
				t.Errorf("worker rows left: %+v", s.Workers)
			}
			noBusyErrors(t, w)
		})
	}
}

// TestEnqueueMalformedList: a list with bad lines enqueues nothing and names each bad line.
func TestEnqueueMalformedList(t *testing.T) {
	t.Parallel()
	db := database(t, "sqlite")
	list := writeList(t, []string{"http://127.0.0.3:8080", "http://127.0.0.3:99999", "socks5://127.0.0.4:1080", "not a proxy", "127.0.0.5:3128"})
	code, out, errOut := run(t, time.Minute, "enqueue", "--database", db, "--judge", "http://127.0.0.2:1/", list)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	for _, want := range []string{list + ":2:", list + ":4:", "nothing enqueued"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(out, "enqueued") {
		t.Errorf("stdout %q", out)
	}
	// Nothing enqueued, not even a database made; and status, which never creates one, says so.
	if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed enqueue left %s: %v", db, err)
	}
	if code, _, errOut := run(t, time.Minute, "status", "--database", db); code != 2 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("status after a failed enqueue: exit %d, %s", code, errOut)
	}
}

// TestKillExecWorker SIGKILLs a worker whose external checker (and the child and setsid'd
// grandchild it started) hangs: none of them survives, and another worker hands the job back and
// finishes it with a checker that works.
func TestKillExecWorker(t *testing.T) {
	t.Parallel()
	fakeChecker := fakeCheckerBinary(t)
	db := database(t, "sqlite")
	var lines []string
	for i := range 10 {
		lines = append(lines, fmt.Sprintf("http://127.0.0.%d:%d", 10+i, 8000+i))
	}
	list := writeList(t, lines)
	if code, out, errOut := run(t, time.Minute, "enqueue", "--database", db, "--chunk", "10", "--judge", "http://127.0.0.2:1/", list); code != 0 {
		t.Fatalf("enqueue exit %d: %s %s", code, out, errOut)
	}
	pids := filepath.Join(t.TempDir(), "pids")
	a := start(t, "workerA", "worker", "--database", db, "--concurrency", "1",
		"--exec", fakeChecker+" -f {in} -o {out} -mode hang -pids "+pids)
	apid := a.cmd.Process.Pid
	testkit.WaitFor(t, 60*time.Second, "the hanging checker, its child and its setsid'd grandchild", func() bool {
		return len(cookieProcesses(t, apid)) >= 3
	})
	a.signal(t, syscall.SIGKILL)
	if code := a.wait(t, 10*time.Second); code != -1 {
		t.Errorf("worker A exit %d, want killed", code)
	}
	// With a PID namespace per task the kernel kills the whole task tree when the worker dies.
	// Without it, a setsid'd escapee lives until the next worker's start-up sweep (HYGIENE.md).
	_, before := statusJSON(t, db, "--layers")
	kernelKills := slices.Contains(before.SupervisionHere, "pid_namespace")
	if kernelKills {
		testkit.WaitFor(t, 10*time.Second, "the dead worker's checker processes to die", func() bool {
			return len(cookieProcesses(t, apid)) == 0
		})
	} else {
		t.Logf("no pid_namespace layer here (%v): relying on worker B's start-up sweep", before.SupervisionHere)
	}
	b := start(t, "workerB", "worker", "--database", db, "--exec", fakeChecker+" -f {in} -o {out} -mode live")
	testkit.WaitFor(t, 30*time.Second, "no process of the dead worker's tasks", func() bool {
		return len(cookieProcesses(t, apid)) == 0
	})
	code, s := statusJSON(t, db, "--wait", "60s")
	if code != 0 || s.Jobs["completed"] != 1 {
		t.Fatalf("status --wait: exit %d, jobs %v", code, s.Jobs)
	}
	if s.Pool.Total != 10 || s.Pool.Alive != 5 {
		t.Errorf("pool %+v, want 10 proxies, the 5 with even ports alive", s.Pool)
	}
	b.signal(t, syscall.SIGTERM)
	if code := b.wait(t, 30*time.Second); code != 0 {
		t.Errorf("worker B exit %d", code)
	}
	if left := cookieProcesses(t, b.cmd.Process.Pid); len(left) > 0 {
		t.Errorf("worker B left processes: %v", left)
	}
}

// TestRiverRetriedTimeout: only River's self-retrying timeouts are excused, never a busy
// database or another error.
func TestRiverRetriedTimeout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		line string
		want bool
	}{
		{`level=ERROR msg="leadership.Elector: Error attempting to elect" attempt=1 err="leadership.attemptElect timed out after 5s: error beginning transaction: context deadline exceeded"`, true},
		{`level=ERROR msg="notifier.Notifier: Error running listener (will attempt reconnect after backoff)" attempt=0 err="context deadline exceeded"`, true},
		{`level=ERROR msg="leadership.Elector: Error attempting to elect" err="database is locked (5) (SQLITE_BUSY)"`, false},
		{`level=ERROR msg="producer: Error fetching jobs" err="context deadline exceeded"`, false},
	} {
		if got := riverRetriedTimeout(tt.line); got != tt.want {
			t.Errorf("riverRetriedTimeout(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}
