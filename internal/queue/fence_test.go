package queue_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testkit"
)

// fetchCount is the SQL of a job's number of fetches: River appends the client id to
// attempted_by at every fetch (it keeps the last 100), whatever happens to the attempt number
// afterwards (a snooze lowers it).
func fetchCount(st *queue.Store) string {
	if st.Engine() == queue.EnginePostgres {
		return `coalesce(cardinality(attempted_by), 0)`
	}
	return `coalesce(json_array_length(attempted_by), 0)`
}

// TestPausedWorkerLeavesJobAlone SIGSTOPs a worker while it runs both jobs, waits until the
// other worker runs them again at a higher attempt, then SIGCONTs it. The woken worker must
// leave the jobs alone (no write without its attempt lands): every job completes once, by the
// attempt that runs it now, every proxy has one current row and one history row of that attempt,
// and no job is fetched more than 3 times. Before the fence, the woken worker's write took the
// job from the worker running it, and the two handed it to each other for ever (issue H2.1).
func TestPausedWorkerLeavesJobAlone(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			db := database(t, engine)
			// The slow proxies hold every check until released: the second run is still going
			// when the paused worker wakes, the moment its stale write used to land. Worker A is
			// stopped as soon as it runs both jobs and before worker B starts (which took 30 s
			// at load 35, when the old 5 s jobs had completed before the stop): the only bound
			// left is A's job timeout (8 s, so that its jobs have timed out when it wakes).
			l, lines, st := heldJobs(t, db)
			ctx := context.Background()
			// No worker hands back a job by its age (--rescue-after 5m): once woken, A's rescuer
			// would take B's held jobs away (attempts 3 and 4, seen); B takes A's over by A's
			// silent heartbeat (--dead-after, 10 s).
			a := start(t, "workerA", "worker", "--database", db, "--concurrency", "2", "--job-timeout", "8s", "--rescue-after", "5m")
			testkit.WaitFor(t, 60*time.Second, "worker A running both jobs", func() bool {
				return scalar(t, st, `SELECT count(*) FROM river_job WHERE state = 'running'`) == 2
			})
			a.signal(t, syscall.SIGSTOP)
			t.Cleanup(func() { _ = a.cmd.Process.Signal(syscall.SIGCONT) })
			if n := scalar(t, st, `SELECT count(*) FROM river_job WHERE state = 'running' AND attempt = 1`); n != 2 {
				t.Fatalf("%d jobs running at attempt 1 when worker A was stopped, want 2 (its job timeout passed first?)", n)
			}
			// Worker B runs the jobs again under held checks for as long as the test holds them
			// (up to a minute after the SIGCONT): with A's 8 s job timeout its attempts timed out
			// and ran again meanwhile (attempt 4, seen in CI).
			b := start(t, "workerB", "worker", "--database", db, "--concurrency", "2", "--job-timeout", "4m", "--rescue-after", "5m")
			testkit.WaitFor(t, 30*time.Second, "status showing worker A stopped", func() bool {
				s, err := st.Status(ctx)
				if err != nil {
					return false
				}
				for _, w := range s.Workers {
					if w.PID == int64(a.cmd.Process.Pid) {
						return w.State == queue.WorkerStopped && !w.Alive && w.Local
					}
				}
				return false
			})
			_, out, _ := run(t, time.Minute, "status", "--database", db)
			if i := strings.Index(out, "/"+strconv.Itoa(a.cmd.Process.Pid)+"/"); i < 0 || !strings.Contains(strings.SplitN(out[i:], "\n", 2)[0], "stopped") {
				t.Errorf("status does not show worker A (pid %d) stopped:\n%s", a.cmd.Process.Pid, out)
			}
			testkit.WaitFor(t, 3*time.Minute, "both jobs taken over at a higher attempt", func() bool {
				return scalar(t, st, `SELECT count(*) FROM river_job WHERE attempt >= 2 AND state IN ('running', 'completed')`) == 2
			})
			a.signal(t, syscall.SIGCONT)
			// The woken worker's jobs have timed out: it writes (and must be told the jobs were
			// taken over) while the second run still holds. Then let the checks answer. Should it
			// not (its jobs started late enough to outlive the stop), it writes once released.
			awaitLeftAlone(a, time.Minute)
			l.ReleaseSlow()
			wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			s, err := st.Wait(wctx, 100*time.Millisecond)
			cancel()
			if err != nil {
				t.Fatalf("queue not drained 90 s after SIGCONT: %v; jobs %v; most fetches %d", err, s.Jobs,
					scalar(t, st, `SELECT max(`+fetchCount(st)+`) FROM river_job`))
			}
			completedOnce(t, st, s, len(lines))
			for _, w := range []*proc{a, b} {
				w.signal(t, syscall.SIGTERM)
				if code := w.wait(t, 30*time.Second); code != 0 {
					t.Errorf("%s exit %d after SIGTERM", w.name, code)
				}
			}
			// The woken worker says that it was silent, and once per job that it lost it.
			if n := strings.Count(a.stderr.String(), "was taken over"); n != 2 {
				t.Errorf("worker A logged %d take-overs, want 2 (one per job); its stderr:\n%s", n, a.stderr.String())
			}
			if !strings.Contains(a.stderr.String(), "this worker was silent for longer than its dead-after bound") {
				t.Errorf("worker A did not say it was silent for too long")
			}
			noBusyErrors(t, b)
		})
	}
}

// completedOnce checks a drained queue after a paused worker came back: the 2 jobs completed,
// none fetched more than 3 times, one current row and one history row per proxy (n of them),
// each history row written by the attempt that completed its job.
func completedOnce(t *testing.T, st *queue.Store, s *queue.Status, n int) {
	t.Helper()
	fetches := scalar(t, st, `SELECT max(`+fetchCount(st)+`) FROM river_job`)
	attempts := scalar(t, st, `SELECT max(attempt) FROM river_job`)
	t.Logf("%s: most fetches of a job %d, highest attempt %d", st.Engine(), fetches, attempts)
	if s.Jobs["completed"] != 2 {
		t.Errorf("jobs %v, want 2 completed", s.Jobs)
	}
	if fetches > 3 || attempts > 3 {
		t.Errorf("a job was fetched %d times (highest attempt %d), want <= 3", fetches, attempts)
	}
	if got := scalar(t, st, `SELECT count(*) FROM proxyline_proxy`); got != int64(n) {
		t.Errorf("current rows %d, want one per proxy (%d)", got, n)
	}
	if got := scalar(t, st, `SELECT count(*) FROM proxyline_check`); got != int64(n) {
		t.Errorf("history rows %d, want one per proxy (%d)", got, n)
	}
	if got := scalar(t, st, `SELECT count(*) FROM proxyline_check c JOIN river_job j ON j.id = c.job_id WHERE c.attempt <> j.attempt`); got != 0 {
		t.Errorf("%d history rows not written by the attempt that completed the job", got)
	}
}

// TestPausedWorkerRescuedByAge is TestPausedWorkerLeavesJobAlone under the condition of the
// original report (issue H2.1: --job-timeout 25s, --rescue-after 26s): the paused worker's jobs
// are taken over by River's rescuer because they ran longer than a short --rescue-after, not by
// its silent heartbeat (--dead-after 10m on both workers, so that never fires). Worker A runs
// both jobs under held checks and is SIGSTOPped; worker B's rescuer hands them back by age and B
// runs them again; A is SIGCONTed while B's run still holds, and must leave the jobs alone.
//
// Bounds: both workers run with --job-timeout 15s --rescue-after 20s. B's run must not pass its
// own job timeout while held (it would fail and run a third time), so the checks are released
// once A's fence has dropped A's writes, at the latest 10 s after B runs both jobs (if A has not
// written by then, its writes come after the release, and must be left alone just the same).
func TestPausedWorkerRescuedByAge(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			db := database(t, engine)
			l, lines, st := heldJobs(t, db)
			flags := []string{"worker", "--database", db, "--concurrency", "2", "--job-timeout", "15s", "--rescue-after", "20s", "--dead-after", "10m"}
			a := start(t, "workerA", flags...)
			testkit.WaitFor(t, 60*time.Second, "worker A running both jobs", func() bool {
				return scalar(t, st, `SELECT count(*) FROM river_job WHERE state = 'running'`) == 2
			})
			a.signal(t, syscall.SIGSTOP)
			t.Cleanup(func() { _ = a.cmd.Process.Signal(syscall.SIGCONT) })
			if n := scalar(t, st, `SELECT count(*) FROM river_job WHERE state = 'running' AND attempt = 1`); n != 2 {
				t.Fatalf("%d jobs running at attempt 1 when worker A was stopped, want 2 (its job timeout passed first?)", n)
			}
			// River's rescuer runs on the leader every 30 s: B may wait for A's leadership to
			// expire (15 s), then for the jobs' age (20 s), the rescuer's tick, the retry's
			// backoff (1 s) and the scheduler (5 s).
			stopped := time.Now()
			b := start(t, "workerB", flags...)
			testkit.WaitFor(t, 3*time.Minute, "worker B running both jobs at attempt 2", func() bool {
				return scalar(t, st, `SELECT count(*) FROM river_job WHERE state = 'running' AND attempt = 2`) == 2
			})
			a.signal(t, syscall.SIGCONT)
			took := time.Since(stopped)
			before := awaitLeftAlone(a, 10*time.Second)
			l.ReleaseSlow()
			t.Logf("%s: taken over %s after the SIGSTOP; worker A's fence left %d of 2 jobs alone before the release",
				engine, took.Round(time.Second), before)
			wctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			s, err := st.Wait(wctx, 100*time.Millisecond)
			cancel()
			if err != nil {
				t.Fatalf("queue not drained 90 s after SIGCONT: %v; jobs %v; errors:%s", err, s.Jobs, jobErrors(t, st, engine))
			}
			completedOnce(t, st, s, len(lines))
			// The take-over was River's rescuer's, by age, not ours, by heartbeat.
			if n := scalar(t, st, `SELECT count(*) FROM river_job WHERE `+errorsText(engine)+` LIKE '%Stuck job rescued by JobRescuer%'`); n != 2 {
				t.Errorf("%d jobs handed back by River's rescuer, want 2; errors:%s", n, jobErrors(t, st, engine))
			}
			if n := scalar(t, st, `SELECT count(*) FROM river_job WHERE `+errorsText(engine)+` LIKE '%was not heard from%'`); n != 0 {
				t.Errorf("%d jobs handed back by heartbeat, want 0 (--dead-after 10m)", n)
			}
			for _, w := range []*proc{a, b} {
				w.signal(t, syscall.SIGTERM)
				if code := w.wait(t, 30*time.Second); code != 0 {
					t.Errorf("%s exit %d after SIGTERM", w.name, code)
				}
			}
			if n := strings.Count(a.stderr.String(), "was taken over"); n != 2 {
				t.Errorf("worker A logged %d take-overs, want 2 (one per job); its stderr:\n%s", n, a.stderr.String())
			}
			noBusyErrors(t, b)
		})
	}
}

// awaitLeftAlone waits up to d for worker a's fence to log both of its jobs left alone (its
// stale writes were tried and dropped), and returns how many it logged. Waiting for the job
// function's "was taken over" is not enough: River's completer writes after it, and once the
// checks are released the other worker may complete the jobs first, so that even an unfenced
// write lands on nothing (seen on PostgreSQL with the attempt check disabled).
func awaitLeftAlone(a *proc, d time.Duration) int {
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		n := strings.Count(a.stderr.String(), "left a job alone")
		if n >= 2 || time.Now().After(deadline) {
			return n
		}
	}
}

// heldJobs starts a lab whose 4 slow proxies hold every check until released, enqueues them at
// db in 2 jobs of 2, and opens the store.
func heldJobs(t *testing.T, db string) (*lab.Lab, []string, *queue.Store) {
	t.Helper()
	l, lines := startLab(t, lab.Config{Slow: 4, SlowDelay: 100 * time.Millisecond, HoldSlow: true})
	t.Cleanup(l.ReleaseSlow) // before the lab's Stop (clean-ups run last first)
	list := writeList(t, lines)
	if code, out, errOut := run(t, time.Minute, "enqueue", "--database", db, "--chunk", "2", "--judge", l.JudgeURL(), "-t", "4m", list); code != 0 {
		t.Fatalf("enqueue exit %d: %s %s", code, out, errOut)
	}
	return l, lines, open(t, db)
}

// many turns one finalising write into the batch form River's completer sends.
func many(p *riverdriver.JobSetStateIfRunningParams) *riverdriver.JobSetStateIfRunningManyParams {
	return &riverdriver.JobSetStateIfRunningManyParams{
		ID: []int64{p.ID}, Attempt: []*int{p.Attempt}, ErrData: [][]byte{p.ErrData},
		FinalizedAt: []*time.Time{p.FinalizedAt}, MetadataDoMerge: []bool{p.MetadataDoMerge},
		MetadataUpdates: [][]byte{p.MetadataUpdates}, ScheduledAt: []*time.Time{p.ScheduledAt},
		State: []rivertype.JobState{p.State},
	}
}

// jobRow is what the fence tests compare: a job's state, attempt, metadata and error count.
type jobRow struct {
	State    string
	Attempt  int
	Metadata string
	Errors   int
}

func readJob(t *testing.T, st *queue.Store, id int64) jobRow {
	t.Helper()
	q := `SELECT state, attempt, json(metadata), coalesce(json_array_length(errors), 0) FROM river_job WHERE id = ?`
	if st.Engine() == queue.EnginePostgres {
		q = `SELECT state::text, attempt, metadata::text, coalesce(array_length(errors, 1), 0) FROM river_job WHERE id = ?`
	}
	rows, err := st.DB().Query(context.Background(), q, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var r jobRow
	if !rows.Next() {
		t.Fatalf("job %d not found", id)
	}
	if err := rows.Scan(&r.State, &r.Attempt, &r.Metadata, &r.Errors); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFenceLeavesOthersJobsAlone sends every kind of finalising write River makes (complete,
// snooze, retry, discard, cancel, and a metadata merge) through a worker's fenced executor, for
// job rows that run another attempt, run for another client, or do not run at all: none may
// change anything. Writes for the attempt the row runs, by this client, land, and the fence's
// mark never reaches the row's metadata.
func TestFenceLeavesOthersJobsAlone(t *testing.T) {
	t.Parallel()
	const me, other = "host/10/100", "host/20/200"
	now := time.Now()
	mark := func(attempt int, extra string) []byte {
		return []byte(fmt.Sprintf(`{"proxyline_fence": {"attempt": %d}%s}`, attempt, extra))
	}
	errData := []byte(`{"at": "2026-01-01T00:00:00Z", "attempt": 1, "error": "boom", "trace": ""}`)
	tests := []struct {
		name  string
		by    string // the row runs attempt 2 for this client
		state string // "" = running; else the row is set to this state first
		write *riverdriver.JobSetStateIfRunningParams
		lands bool
	}{
		{"complete, stale attempt", me, "", riverdriver.JobSetStateCompleted(0, now, mark(1, "")), false},
		{"snooze, stale attempt", me, "", riverdriver.JobSetStateSnoozedAvailable(0, now, 0, mark(1, `, "snoozes": 1`)), false},
		{"retry, stale attempt", me, "", riverdriver.JobSetStateErrorAvailable(0, now, errData, mark(1, "")), false},
		{"discard, stale attempt", me, "", riverdriver.JobSetStateDiscarded(0, now, errData, mark(1, "")), false},
		{"cancel, stale attempt", me, "", riverdriver.JobSetStateCancelled(0, now, errData, mark(1, "")), false},
		{"complete, same attempt but another client", other, "", riverdriver.JobSetStateCompleted(0, now, mark(2, "")), false},
		{"metadata merge on a job handed back", me, "available", riverdriver.JobSetStateSnoozedAvailable(0, now, 1, mark(2, `, "snoozes": 1`)), false},
		{"no mark and no fetch on record", me, "", riverdriver.JobSetStateCompleted(0, now, nil), false},
		{"complete, current attempt", me, "", riverdriver.JobSetStateCompleted(0, now, mark(2, `, "x": 1`)), true},
		{"retry, current attempt", me, "", riverdriver.JobSetStateErrorAvailable(0, now, errData, mark(2, "")), true},
	}
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := open(t, database(t, engine))
			ctx := context.Background()
			ids, err := st.EnqueueChecks(ctx, queue.Split(proxies(len(tests)), "l", 1), queue.CheckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			exec := st.FencedExecutor(me)
			for i, tt := range tests {
				markRunning(t, st, ids[i], 2, tt.by)
				if tt.state != "" {
					if _, err := st.DB().Exec(ctx, `UPDATE river_job SET state = ? WHERE id = ?`, tt.state, ids[i]); err != nil {
						t.Fatal(err)
					}
				}
				before := readJob(t, st, ids[i])
				tt.write.ID = ids[i]
				rows, err := exec.JobSetStateIfRunningMany(ctx, many(tt.write))
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				after := readJob(t, st, ids[i])
				if strings.Contains(after.Metadata, "proxyline_fence") {
					t.Errorf("%s: the fence's mark reached the row: %s", tt.name, after.Metadata)
				}
				switch {
				case tt.lands && (after.State != string(tt.write.State) || len(rows) != 1):
					t.Errorf("%s: did not land: %+v -> %+v (%d rows)", tt.name, before, after, len(rows))
				case !tt.lands && (after != before || len(rows) != 0):
					t.Errorf("%s: landed: %+v -> %+v (%d rows returned)", tt.name, before, after, len(rows))
				}
			}
		})
	}
}

// TestFenceFallsBackToTheFetch: a write without a mark (an execution that failed before the
// middleware ran) is fenced by the attempt this process fetched.
func TestFenceFallsBackToTheFetch(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := open(t, database(t, engine))
			ctx := context.Background()
			if _, err := st.EnqueueChecks(ctx, queue.Split(proxies(1), "l", 1), queue.CheckOptions{}); err != nil {
				t.Fatal(err)
			}
			exec := st.FencedExecutor("host/10/100")
			res, err := exec.JobGetAvailable(ctx, &riverdriver.JobGetAvailableParams{ClientID: "host/10/100",
				MaxAttemptedBy: 100, MaxToLock: 1, Queue: river.QueueDefault})
			if err != nil || len(res.Jobs) != 1 {
				t.Fatalf("fetch: %v, %+v", err, res)
			}
			id := res.Jobs[0].ID
			// Another process takes the job over at the next attempt: the late write is refused.
			markRunning(t, st, id, 2, "host/20/200")
			if rows, err := exec.JobSetStateIfRunningMany(ctx, many(riverdriver.JobSetStateCompleted(id, time.Now(), nil))); err != nil || len(rows) != 0 {
				t.Fatalf("late write: %d rows, %v", len(rows), err)
			}
			if got := readJob(t, st, id); got.State != "running" || got.Attempt != 2 {
				t.Errorf("job after a late write: %+v", got)
			}
			// Fetched again, by us: the write lands.
			markRunning(t, st, id, 1, "host/20/200")
			if _, err := st.DB().Exec(ctx, `UPDATE river_job SET state = 'available' WHERE id = ?`, id); err != nil {
				t.Fatal(err)
			}
			if res, err = exec.JobGetAvailable(ctx, &riverdriver.JobGetAvailableParams{ClientID: "host/10/100",
				MaxAttemptedBy: 100, MaxToLock: 1, Queue: river.QueueDefault}); err != nil || len(res.Jobs) != 1 {
				t.Fatalf("fetch again: %v, %+v", err, res)
			}
			if rows, err := exec.JobSetStateIfRunningMany(ctx, many(riverdriver.JobSetStateCompleted(id, time.Now(), nil))); err != nil || len(rows) != 1 {
				t.Fatalf("write of the current attempt: %d rows, %v", len(rows), err)
			}
			if got := readJob(t, st, id); got.State != "completed" {
				t.Errorf("job after the current attempt's write: %+v", got)
			}
		})
	}
}
