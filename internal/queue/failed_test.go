package queue_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/queue"
)

// finalize ends job id in state with err as its last error, finalized at the database's clock plus
// skew (a negative skew is a worker whose clock is behind).
func finalize(t *testing.T, st *queue.Store, engine string, id int64, state, errText string, skew time.Duration) {
	t.Helper()
	ctx := context.Background()
	now, err := queue.DBNow(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	at := now.Add(skew)
	e, _ := json.Marshal(map[string]any{"at": at, "attempt": 1, "error": errText, "trace": ""})
	q := `UPDATE river_job SET state = ?, finalized_at = ?, errors = jsonb(json_array(json(?))) WHERE id = ?`
	var when any = at.UTC().Format("2006-01-02 15:04:05.000")
	if engine == "postgres" {
		q = `UPDATE river_job SET state = ?::river_job_state, finalized_at = ?, errors = ARRAY[?::jsonb] WHERE id = ?`
		when = at
	}
	if n, err := st.DB().Exec(ctx, q, state, when, string(e), id); err != nil || n != 1 {
		t.Fatalf("finalize job %d: %d rows, %v", id, n, err)
	}
}

// TestFailedJobsAndWaitReport: status lists the failed jobs with their last error (passwords
// masked); a wait counts only the jobs that failed after it began, including one finalized by a
// worker whose clock is 30 s behind the database's, and not one that failed before it.
func TestFailedJobsAndWaitReport(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := open(t, database(t, engine))
			ids, err := st.EnqueueChecks(ctx, queue.Split(proxies(5), "list.txt", 1), queue.CheckOptions{Judge: "http://127.0.0.2:1/"})
			if err != nil {
				t.Fatal(err)
			}
			s, err := st.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s.Failed == nil || len(s.Failed) != 0 || s.Workers == nil {
				t.Errorf("fresh queue: failed %#v, workers %#v; want empty lists, not null", s.Failed, s.Workers)
			}
			finalize(t, st, engine, ids[0], "discarded", "before the wait", 0)
			mark, err := queue.MarkWait(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			finalize(t, st, engine, ids[1], "discarded", "connect postgres://u:s3cret@db/q refused", -30*time.Second)
			finalize(t, st, engine, ids[2], "cancelled", "bad proxies", 0)
			finalize(t, st, engine, ids[3], "completed", "", 0)
			r, err := queue.FailedSince(ctx, st, mark)
			if err != nil {
				t.Fatal(err)
			}
			if r.Discarded != 1 || r.Cancelled != 1 || !slices.Contains(r.JobIDs, ids[1]) || !slices.Contains(r.JobIDs, ids[2]) || len(r.JobIDs) != 2 {
				t.Errorf("wait report %+v, want job %d discarded and %d cancelled", r, ids[1], ids[2])
			}
			s, err = st.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Failed) != 3 {
				t.Fatalf("failed jobs %+v, want 3", s.Failed)
			}
			for _, f := range s.Failed {
				if strings.Contains(f.Error, "s3cret") || f.Source == "" || f.Kind != queue.KindCheck || f.FinalizedAt.IsZero() {
					t.Errorf("failed job %+v", f)
				}
				if f.ID == ids[1] && (f.State != "discarded" || !strings.Contains(f.Error, "u:xxxxx@db")) {
					t.Errorf("failed job %+v", f)
				}
			}
			// A wait that times out says so; one on a drained queue reports no failure of its own.
			wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			s, err = st.Wait(wctx, 10*time.Millisecond)
			cancel()
			if err == nil || s == nil || s.Wait == nil || s.Wait.Drained {
				t.Fatalf("wait with job %d available: %v, %+v", ids[4], err, s)
			}
			finalize(t, st, engine, ids[4], "completed", "", 0)
			s, err = st.Wait(ctx, 10*time.Millisecond)
			if err != nil || !s.Wait.Drained || s.Wait.Discarded != 0 || s.Wait.Cancelled != 0 || len(s.Wait.JobIDs) != 0 {
				t.Errorf("wait on a drained queue: %v, %+v", err, s.Wait)
			}
		})
	}
}
