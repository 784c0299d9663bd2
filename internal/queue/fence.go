package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// The fence: every write about a job that a worker's River client makes on behalf of one of its
// executions lands only while the job still runs that execution's attempt, for this client.
//
// Why: River finalises an execution (complete, snooze, retry, error, discard, cancel) with the
// driver's JobSetStateIfRunningMany, whose UPDATE checks only `state = 'running'`. A worker that
// was paused (SIGSTOP, a long GC or swap storm, a network partition) while its job was handed
// back and taken by another worker wakes up and finalises its execution anyway: the UPDATE lands
// on the other worker's execution and takes the job away from it. The other worker's own write
// is then refused by our pool fence, it snoozes, its snooze lands on the next execution, and so
// on: the job ran 185 times without completing (issue H2.1).
//
// How: the worker's River client gets a driver whose executors (pool and transaction) are
// wrapped (River accepts any riverdriver.Driver; its Pilot calls the executor's methods):
//
//   - a worker middleware writes the attempt the execution was given into the execution's
//     metadata updates (river.MetadataSet, under fenceKey), which River passes to every
//     finalising write of that execution, including JobCompleteTx's;
//   - the wrapped JobSetStateIfRunningMany takes the mark out of the metadata again, and, in one
//     transaction, locks the job rows (SELECT ... FOR UPDATE on PostgreSQL; SQLite transactions
//     take the write lock at BEGIN) and passes on to River's own statement only the rows whose
//     state is running, whose attempt is the mark's and whose last attempted_by is this client.
//     The other rows are left alone (not even River's metadata merge touches them; logged at
//     INFO, except a job this very execution completed already with JobCompleteTx) and are not
//     returned, which River's completer treats as "nothing to report" (as for a deleted job),
//     so it moves on without retrying;
//   - a write without a mark (an execution that failed before middleware ran: an undecodable
//     row) falls back to the attempt the wrapped JobGetAvailable recorded when it fetched the
//     job, if this process has exactly one execution of that job in flight; else it is left
//     alone.
//
// The attempt alone would not be an epoch (a snooze lowers it by one), but with the client id it
// is: once an execution has lost its job, every later execution runs at a higher attempt or in
// another process. The pair also tells apart two executions of one job in one process (a paused
// worker whose job was handed back may fetch it again when it wakes); the fetch record alone
// could not. Alternatives considered: a copy of River's UPDATE with the extra condition (two
// engines' worth of River's SQL to keep in step with River), and a Pilot (River's pluggable
// layer, reachable only through an unexported driver-plugin interface).
const fenceKey = "proxyline_fence"

// fenceMark is what the middleware records: the attempt the execution was given.
type fenceMark struct {
	Attempt int `json:"attempt"`
}

// fenceMiddleware marks every execution with its attempt. It runs before the job's arguments are
// decoded, so every execution that reaches a worker is marked.
type fenceMiddleware struct {
	river.MiddlewareDefaults
}

func (*fenceMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	if err := river.MetadataSet(ctx, fenceKey, fenceMark{Attempt: job.Attempt}); err != nil {
		return fmt.Errorf("mark job %d with its attempt: %w", job.ID, err)
	}
	return doInner(ctx)
}

// fence holds what the wrapped executors of one River client share.
type fence struct {
	self string // the client's id, as River writes it into attempted_by
	dial dialect
	log  *slog.Logger

	mu      sync.Mutex
	fetched map[int64][]int // guarded by mu: attempts of this process's executions in flight, by job id
}

func newFence(self string, d dialect, log *slog.Logger) *fence {
	return &fence{self: self, dial: d, log: log, fetched: map[int64][]int{}}
}

// fencedDriver is a River driver whose executors are fenced.
type fencedDriver[TTx any] struct {
	riverdriver.Driver[TTx]
	f *fence
}

func (d *fencedDriver[TTx]) GetExecutor() riverdriver.Executor {
	return &fencedExecutor{Executor: d.Driver.GetExecutor(), f: d.f}
}

func (d *fencedDriver[TTx]) UnwrapExecutor(tx TTx) riverdriver.ExecutorTx {
	return &fencedTx{ExecutorTx: d.Driver.UnwrapExecutor(tx), f: d.f}
}

func (d *fencedDriver[TTx]) UnwrapTx(execTx riverdriver.ExecutorTx) TTx {
	if t, ok := execTx.(*fencedTx); ok {
		execTx = t.ExecutorTx
	}
	return d.Driver.UnwrapTx(execTx)
}

// fencedExecutor is a fenced pool executor.
type fencedExecutor struct {
	riverdriver.Executor
	f *fence
}

func (e *fencedExecutor) Begin(ctx context.Context) (riverdriver.ExecutorTx, error) {
	tx, err := e.Executor.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &fencedTx{ExecutorTx: tx, f: e.f}, nil
}

func (e *fencedExecutor) JobGetAvailable(ctx context.Context, p *riverdriver.JobGetAvailableParams) (*riverdriver.JobGetAvailableResult, error) {
	res, err := e.Executor.JobGetAvailable(ctx, p)
	if err == nil && res != nil {
		e.f.recordFetch(res.Jobs)
	}
	return res, err
}

func (e *fencedExecutor) JobSetStateIfRunningMany(ctx context.Context, p *riverdriver.JobSetStateIfRunningManyParams) ([]*rivertype.JobRow, error) {
	tx, err := e.Executor.Begin(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := e.f.setState(ctx, tx, p)
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return rows, nil
}

// fencedTx is a fenced transaction executor.
type fencedTx struct {
	riverdriver.ExecutorTx
	f *fence
}

func (t *fencedTx) Begin(ctx context.Context) (riverdriver.ExecutorTx, error) {
	tx, err := t.ExecutorTx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &fencedTx{ExecutorTx: tx, f: t.f}, nil
}

func (t *fencedTx) JobGetAvailable(ctx context.Context, p *riverdriver.JobGetAvailableParams) (*riverdriver.JobGetAvailableResult, error) {
	res, err := t.ExecutorTx.JobGetAvailable(ctx, p)
	if err == nil && res != nil {
		t.f.recordFetch(res.Jobs)
	}
	return res, err
}

func (t *fencedTx) JobSetStateIfRunningMany(ctx context.Context, p *riverdriver.JobSetStateIfRunningManyParams) ([]*rivertype.JobRow, error) {
	return t.f.setState(ctx, t.ExecutorTx, p)
}

func (f *fence) recordFetch(jobs []*rivertype.JobRow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range jobs {
		f.fetched[j.ID] = append(f.fetched[j.ID], j.Attempt)
	}
}

// attemptOf returns the attempt a write for job id is made on behalf of: the mark's, else the
// only execution of the job this process has in flight. ok is false when it cannot tell.
func (f *fence) attemptOf(id int64, mark *fenceMark) (attempt int, ok bool) {
	if mark != nil {
		return mark.Attempt, true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if as := f.fetched[id]; len(as) == 1 {
		return as[0], true
	}
	return 0, false
}

// forget drops the fetch records of the executions that made the writes: a write is an
// execution's last.
func (f *fence) forget(ids []int64, attempts []int, known []bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, id := range ids {
		as := f.fetched[id]
		if j := slices.Index(as, attempts[i]); known[i] && j >= 0 {
			as = slices.Delete(as, j, j+1)
		}
		if len(as) == 0 {
			delete(f.fetched, id)
		} else {
			f.fetched[id] = as
		}
	}
}

// setState runs River's JobSetStateIfRunningMany, within tx, on the rows that still run the
// attempt each write was made for, by this client; it returns only those rows. p is not changed
// (River's completer retries with the same parameters after an error).
func (f *fence) setState(ctx context.Context, tx riverdriver.Executor, p *riverdriver.JobSetStateIfRunningManyParams) ([]*rivertype.JobRow, error) {
	q := *p
	q.MetadataUpdates = slices.Clone(p.MetadataUpdates)
	q.MetadataDoMerge = slices.Clone(p.MetadataDoMerge)
	attempts := make([]int, len(q.ID))
	known := make([]bool, len(q.ID))
	for i, id := range q.ID {
		mark, rest, err := takeMark(q.MetadataUpdates[i])
		if err != nil {
			return nil, fmt.Errorf("job %d: metadata updates: %w", id, err)
		}
		q.MetadataUpdates[i], q.MetadataDoMerge[i] = rest, q.MetadataDoMerge[i] && len(rest) > 0
		attempts[i], known[i] = f.attemptOf(id, mark)
	}
	now, err := f.lock(ctx, tx, q.ID)
	if err != nil {
		return nil, err
	}
	keep := make([]int, 0, len(q.ID))
	for i, id := range q.ID {
		h := now[id]
		switch {
		case known[i] && h.State == "running" && h.Attempt == attempts[i] && h.By == f.self:
			keep = append(keep, i)
		case known[i] && h.State == "completed" && h.Attempt == attempts[i] && h.By == f.self:
			// Completed by this very execution, with its results (JobCompleteTx): River's
			// completer finalises it a second time.
		default:
			f.log.Info("left a job alone: it no longer runs this worker's attempt", "job", id,
				"attempt", attempts[i], "attempt_known", known[i], "state_asked", q.State[i],
				"state", h.State, "attempt_now", h.Attempt, "by_now", h.By)
		}
	}
	var rows []*rivertype.JobRow
	if len(keep) > 0 {
		r := &q
		if len(keep) < len(q.ID) {
			r = subset(&q, keep)
		}
		if rows, err = tx.JobSetStateIfRunningMany(ctx, r); err != nil {
			return nil, err
		}
	}
	f.forget(q.ID, attempts, known)
	return rows, nil
}

// lock locks the given jobs' rows until tx ends and returns where each stands.
func (f *fence) lock(ctx context.Context, tx riverdriver.Executor, ids []int64) (map[int64]jobHolder, error) {
	in, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	var got []byte
	if err := tx.QueryRow(ctx, lockSQL(f.dial), string(in)).Scan(&got); err != nil {
		return nil, fmt.Errorf("lock jobs %v: %w", ids, err)
	}
	var rows [][]json.RawMessage
	if err := json.Unmarshal(got, &rows); err != nil {
		return nil, fmt.Errorf("lock jobs %v: %w", ids, err)
	}
	out := make(map[int64]jobHolder, len(rows))
	for _, r := range rows {
		var id int64
		var h jobHolder
		if len(r) != 4 || json.Unmarshal(r[0], &id) != nil || json.Unmarshal(r[1], &h.State) != nil ||
			json.Unmarshal(r[2], &h.Attempt) != nil || json.Unmarshal(r[3], &h.By) != nil {
			return nil, fmt.Errorf("lock jobs %v: unexpected row %s", ids, r)
		}
		out[id] = h
	}
	return out, nil
}

// lockSQL takes a JSON array of job ids, locks those jobs' rows (in id order, so that two
// batches never wait for each other in a cycle; SQLite: the transaction holds the write lock
// already) and returns a JSON array of [id, state, attempt, last attempted_by].
func lockSQL(d dialect) string {
	if d == dialectPostgres {
		return `SELECT coalesce(json_agg(json_build_array(id, state, attempt, last_by)), '[]')::text FROM (
			SELECT j.id, j.state, j.attempt, coalesce(` + lastAttemptedBy(d) + `, '') AS last_by
			FROM river_job j WHERE j.id IN (SELECT json_array_elements_text($1::json)::bigint)
			ORDER BY j.id FOR UPDATE OF j) s`
	}
	return `SELECT coalesce(json_group_array(json_array(j.id, j.state, j.attempt, coalesce(` + lastAttemptedBy(d) + `, ''))), '[]')
		FROM river_job j WHERE j.id IN (SELECT value FROM json_each(?1))`
}

// takeMark returns the fence mark in a write's metadata updates and the updates without it.
func takeMark(updates []byte) (*fenceMark, []byte, error) {
	if len(updates) == 0 {
		return nil, updates, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(updates, &m); err != nil {
		return nil, nil, err
	}
	raw, ok := m[fenceKey]
	if !ok {
		return nil, updates, nil
	}
	var mark fenceMark
	if err := json.Unmarshal(raw, &mark); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", fenceKey, err)
	}
	delete(m, fenceKey)
	if len(m) == 0 {
		return &mark, nil, nil
	}
	rest, err := json.Marshal(m)
	return &mark, rest, err
}

// subset returns the writes of p at the given indexes.
func subset(p *riverdriver.JobSetStateIfRunningManyParams, keep []int) *riverdriver.JobSetStateIfRunningManyParams {
	q := &riverdriver.JobSetStateIfRunningManyParams{Now: p.Now, Schema: p.Schema}
	for _, i := range keep {
		q.ID = append(q.ID, p.ID[i])
		q.Attempt = append(q.Attempt, p.Attempt[i])
		q.ErrData = append(q.ErrData, p.ErrData[i])
		q.FinalizedAt = append(q.FinalizedAt, p.FinalizedAt[i])
		q.MetadataDoMerge = append(q.MetadataDoMerge, p.MetadataDoMerge[i])
		q.MetadataUpdates = append(q.MetadataUpdates, p.MetadataUpdates[i])
		q.ScheduledAt = append(q.ScheduledAt, p.ScheduledAt[i])
		q.State = append(q.State, p.State[i])
	}
	return q
}
