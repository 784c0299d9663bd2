package queue_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testkit"
)

// startMachine runs `proxyline ARGS...` as the init of new UTS, PID and mount namespaces with
// the host name host: a machine of its own as far as proxyline can tell (its own host name, pids
// and /proc), sharing the network (PostgreSQL, the lab) with this one. unshare kills the init
// when it dies itself (--kill-child), so the test's cleanup (SIGKILL to unshare) ends the whole
// namespace. It returns the process of unshare.
func startMachine(t *testing.T, host string, args ...string) *proc {
	t.Helper()
	argv := append([]string{"--uts", "--pid", "--fork", "--mount-proc", "--kill-child", "--",
		"sh", "-c", `hostname "$1" && shift && exec "$@"`, "sh", host, proxylineBinary(t)}, args...)
	return startCmd(t, host, exec.Command("unshare", argv...))
}

// nsInit returns the pid (in this namespace) of the init of the machine p started: unshare's
// only child.
func nsInit(t *testing.T, p *proc) int {
	t.Helper()
	pid := p.cmd.Process.Pid
	var kids []string
	testkit.WaitFor(t, 10*time.Second, "the machine's init", func() bool {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "task", strconv.Itoa(pid), "children"))
		kids = strings.Fields(string(b))
		return err == nil && len(kids) == 1
	})
	n, err := strconv.Atoi(kids[0])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// canUnshare skips the test where new UTS, PID and mount namespaces cannot be made (not root,
// no unshare), unless CI is set.
func canUnshare(t *testing.T) {
	t.Helper()
	out, err := exec.Command("unshare", "--uts", "--pid", "--fork", "--mount-proc", "--kill-child", "--",
		"sh", "-c", "hostname probe-host && hostname").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "probe-host" {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot make UTS/PID/mount namespaces (CI is set): %v: %s", err, out)
		}
		t.Skipf("cannot make UTS/PID/mount namespaces: %v: %s", err, out)
	}
}

// TestDeadMachineJobsRunAgain runs two "machines" on one PostgreSQL database (each a worker in
// its own UTS, PID and mount namespaces, with its own host name, so neither can see the other's
// processes), kills machine A whole (SIGKILL to its namespace's init) while it runs every job,
// and requires machine B to run them all again (found by A's silent heartbeat: no local rescuer
// can see A's processes, River's rescuer would wait 6 minutes) with nothing lost and no result
// accepted twice. It logs the time from the kill to every job running again (target <= 10 s with
// the default --dead-after; not asserted).
func TestDeadMachineJobsRunAgain(t *testing.T) {
	t.Parallel()
	canUnshare(t)
	db := database(t, "postgres")
	// Jobs last 30 s: machine A still runs them when it is killed, 10+ s after they started.
	l, lines := startLab(t, slowLab(8, 30*time.Second))
	list := writeList(t, lines)
	if code, out, errOut := run(t, time.Minute, "enqueue", "--database", db, "--chunk", "2", "--judge", l.JudgeURL(), "-t", "40s", list); code != 0 {
		t.Fatalf("enqueue exit %d: %s %s", code, out, errOut)
	}
	st := open(t, db)
	ctx := context.Background()
	flags := []string{"worker", "--database", db, "--concurrency", "4", "--job-timeout", "60s"}
	a := startMachine(t, "machine-a", flags...)
	testkit.WaitFor(t, 60*time.Second, "machine A running all 4 jobs", func() bool {
		return scalar(t, st, `SELECT count(*) FROM river_job WHERE state = 'running' AND attempted_by[1] LIKE 'machine-a/%'`) == 4
	})
	b := startMachine(t, "machine-b", flags...)
	testkit.WaitFor(t, 60*time.Second, "machine B registered", func() bool {
		s, err := st.Status(ctx)
		return err == nil && len(s.Workers) == 2
	})
	// A worker declares others dead only once it has been heard from steadily for --dead-after
	// itself (so that one coming back from an outage does not declare everyone dead): measure
	// with B past that, as a machine that has been up for a while.
	up := time.Now()
	testkit.WaitFor(t, time.Minute, "machine B up for --dead-after", func() bool { return time.Since(up) > queue.DefaultDeadAfter })
	initPID := nsInit(t, a)
	killed := time.Now()
	if err := syscall.Kill(initPID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill machine A's init %d: %v", initPID, err)
	}
	// Well under River's own bound (--rescue-after, 2 min here, plus up to 30 s), so that only
	// the heartbeat recovery can pass this.
	testkit.WaitFor(t, time.Minute, "every job running again on machine B, or done", func() bool {
		return scalar(t, st, `SELECT count(*) FROM river_job WHERE attempt >= 2 AND state IN ('running', 'completed')`) == 4
	})
	t.Logf("machine A killed whole: every job running again on machine B after %s", time.Since(killed).Round(time.Millisecond))
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Errorf("machine A's unshare still runs after its init was killed")
	}
	if code, s := statusJSON(t, db, "--wait", "90s"); code != 0 || s.Jobs["completed"] != 4 {
		t.Fatalf("status --wait: exit %d, jobs %v", code, s.Jobs)
	}
	if n := scalar(t, st, `SELECT count(*) FROM proxyline_proxy`); n != int64(len(lines)) {
		t.Errorf("current rows %d, want one per proxy (%d): lost results", n, len(lines))
	}
	if n := scalar(t, st, `SELECT count(*) FROM proxyline_check`); n != int64(len(lines)) {
		t.Errorf("history rows %d, want one per proxy (%d)", n, len(lines))
	}
	if n := scalar(t, st, `SELECT count(*) FROM proxyline_check c JOIN river_job j ON j.id = c.job_id
		WHERE c.attempt <> j.attempt OR c.worker NOT LIKE 'machine-b/%'`); n != 0 {
		t.Errorf("%d results accepted from the dead machine or from another attempt than the one that completed", n)
	}
	_, s := statusJSON(t, db)
	for _, w := range s.Workers {
		if w.Host == "machine-a" && w.State != queue.WorkerStale {
			t.Errorf("dead machine's worker shows as %s, want %s", w.State, queue.WorkerStale)
		}
	}
	// unshare does not pass signals on: stop B's worker, its namespace's init, directly.
	if err := syscall.Kill(nsInit(t, b), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := b.wait(t, 30*time.Second); code != 0 {
		t.Errorf("machine B exit %d after SIGTERM", code)
	}
}

// TestWorkerStopsWhenDatabaseFileRemoved removes (or replaces, by rename) the SQLite file under
// a worker running a job: the worker must notice, cancel its job rather than complete it into a
// file nobody else sees, and exit 3 naming the file and what happened.
func TestWorkerStopsWhenDatabaseFileRemoved(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"removed", "replaced"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			db := filepath.Join(dir, "queue.db")
			l, lines := startLab(t, slowLab(2, 30*time.Second))
			list := writeList(t, lines)
			if code, out, errOut := run(t, time.Minute, "enqueue", "--database", db, "--chunk", "2", "--judge", l.JudgeURL(), "-t", "40s", list); code != 0 {
				t.Fatalf("enqueue exit %d: %s %s", code, out, errOut)
			}
			w := start(t, "worker", "worker", "--database", db, "--concurrency", "1")
			testkit.WaitFor(t, 60*time.Second, "the job running", func() bool {
				code, s := statusJSON(t, db)
				return code == 0 && s.Jobs["running"] == 1
			})
			// Keep the old file reachable, to look into it afterwards.
			old := filepath.Join(dir, "old.db")
			if err := os.Link(db, old); err != nil {
				t.Fatal(err)
			}
			if how == "removed" {
				if err := os.Remove(db); err != nil {
					t.Fatal(err)
				}
			} else {
				other := filepath.Join(dir, "other.db")
				open(t, other).Close()
				if err := os.Rename(other, db); err != nil {
					t.Fatal(err)
				}
			}
			code := w.wait(t, 30*time.Second)
			errOut := w.stderr.String()
			if code != 3 {
				t.Errorf("worker exit %d, want 3", code)
			}
			if want := "database file " + db + " was " + how; !strings.Contains(errOut, want) {
				t.Errorf("worker's stderr lacks %q:\n%s", want, lastLines(errOut, 20))
			}
			// The old file (the worker checkpointed it when it closed it, but take its WAL
			// along in case): the job is not done and no result was written.
			if err := os.Rename(db+"-wal", old+"-wal"); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			st := open(t, old)
			if n := scalar(t, st, `SELECT count(*) FROM river_job WHERE state = 'completed'`); n != 0 {
				t.Errorf("%d jobs claimed done in the removed file", n)
			}
			if n := scalar(t, st, `SELECT count(*) FROM proxyline_check`); n != 0 {
				t.Errorf("%d results written to the removed file", n)
			}
		})
	}
}
