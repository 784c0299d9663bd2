package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/proxy"
)

// checkWorker is the River worker of check jobs.
type checkWorker struct {
	river.WorkerDefaults[CheckArgs]
	w *Worker
}

// Work checks the chunk and, in one transaction, writes the results to the pool and completes
// the job. A job cut short by a stop hands itself back with JobSnooze(0): it is available again
// at once, for this worker's successor or another worker.
func (cw *checkWorker) Work(ctx context.Context, job *river.Job[CheckArgs]) error {
	w := cw.w
	log := w.cfg.Logger.With("job", job.ID, "attempt", job.Attempt)
	given, err := w.jobProxies(job)
	if err != nil {
		return err
	}
	start := time.Now()
	results, done, err := w.checkJob(ctx, log, job, given)
	if done {
		return err
	}
	checks := make([]pool.Check, len(given))
	for i := range given {
		checks[i] = pool.Check{Given: given[i], Result: results[i]}
	}
	if lost, err := w.recordJob(ctx, log, job, checks); lost || err != nil {
		return err
	}
	w.setup.ok()
	log.Debug("job done", "proxies", len(given), "took", time.Since(start))
	return nil
}

// jobProxies parses the job's proxies and validates its options. A job whose arguments are bad
// is canceled: retrying cannot fix them (enqueue validates, so it is a foreign job).
func (w *Worker) jobProxies(job *river.Job[CheckArgs]) ([]proxy.Proxy, error) {
	given := make([]proxy.Proxy, 0, len(job.Args.Proxies))
	var bad []error
	for i, s := range job.Args.Proxies {
		p, err := w.cfg.ParseProxy(s)
		if err != nil {
			bad = append(bad, fmt.Errorf("proxy %d: %w", i+1, err))
			continue
		}
		given = append(given, p)
	}
	if len(bad) > 0 {
		return nil, river.JobCancel(fmt.Errorf("job %d has bad proxies: %w", job.ID, errors.Join(bad...)))
	}
	if err := job.Args.Options.Validate(); err != nil {
		return nil, river.JobCancel(fmt.Errorf("job %d: %w", job.ID, err))
	}
	return given, nil
}

// checkJob checks the chunk with the checker of the job's options. When done is set, Work
// returns err (nil included) at once: the job was cut short by a stop (handed back), lost to
// another worker, or failed; otherwise results has one result per proxy.
func (w *Worker) checkJob(ctx context.Context, log *slog.Logger, job *river.Job[CheckArgs], given []proxy.Proxy) (results []check.Result, done bool, err error) {
	chk, err := w.checker(ctx, job.Args.Options)
	if err != nil {
		if w.stopping.Load() && ctx.Err() != nil {
			return nil, true, river.JobSnooze(0)
		}
		return nil, true, w.jobFailed(ctx, log, job, fmt.Errorf("prepare checker for job %d: %w", job.ID, err))
	}
	results, err = chk.CheckChunk(ctx, given)
	if ctx.Err() != nil {
		if w.stopping.Load() {
			log.Info("job canceled by stop; handing it back")
			return nil, true, river.JobSnooze(0)
		}
		// A job timeout while this process was paused: the job may be another's by now.
		if w.lost(ctx, log, job.JobRow) {
			return nil, true, nil
		}
		return nil, true, fmt.Errorf("job %d: %w", job.ID, context.Cause(ctx))
	}
	if err != nil {
		return nil, true, w.jobFailed(ctx, log, job, w.setup.checkerFailed(fmt.Errorf("check chunk of job %d: %w", job.ID, err)))
	}
	if len(results) != len(given) {
		err := fmt.Errorf("job %d: checker returned %d results for %d proxies", job.ID, len(results), len(given))
		return nil, true, w.jobFailed(ctx, log, job, w.setup.checkerFailed(err))
	}
	return results, false, nil
}

// jobFailed returns err for River to retry the job, unless it is a setup error (check.ErrSetup):
// not the job's fault, so not counted against it. A set-up error of a job that is no longer this
// execution's is not counted either (nil: the job is left alone): a worker paused during the
// set-up (a judge's request in flight when SIGSTOPped) finds its deadlines passed when it wakes,
// and that says nothing of its set-up; counted, such failures could stop a worker that works.
func (w *Worker) jobFailed(ctx context.Context, log *slog.Logger, job *river.Job[CheckArgs], err error) error {
	if errors.Is(err, check.ErrSetup) {
		if w.lost(ctx, log, job.JobRow) {
			return nil
		}
		return w.setup.failed(job.JobRow, err)
	}
	return err
}

// recordJob writes the results to the pool and completes the job in one transaction. The results
// are in hand: they are written even if a stop begins now, within a bound. lost says the job
// was no longer this worker's, and nothing was written (err is nil then).
func (w *Worker) recordJob(ctx context.Context, log *slog.Logger, job *river.Job[CheckArgs], checks []pool.Check) (lost bool, err error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	src := pool.Source{JobID: job.ID, Attempt: job.Attempt, Worker: w.self.String()}
	err = w.store.eng.inJobTx(wctx, job.JobRow, func(db pool.DB) error { return pool.Record(wctx, db, src, checks) })
	if errors.Is(err, ErrJobLost) {
		// The job was handed back while we worked (this worker was paused or cut off and
		// declared dead, or ran past --rescue-after) and maybe runs elsewhere. Our results
		// were not written. Leave the job alone: whatever we return, the fenced driver drops
		// the write it leads to (fence.go); nil says nothing false in River's logs.
		w.lost(wctx, log, job.JobRow)
		return true, nil
	}
	if err != nil {
		// The results cannot be written (the database is unavailable, or its disk full): not
		// the job's fault, and not one to count against it.
		return false, w.setup.failed(job.JobRow, fmt.Errorf("record results of job %d: %w", job.ID, err))
	}
	return false, nil
}

// lost reports whether job no longer runs this execution's attempt for this worker; if so it
// says so once, at WARN, naming who has the job now.
func (w *Worker) lost(ctx context.Context, log *slog.Logger, job *rivertype.JobRow) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now, err := w.store.jobNow(ctx, job.ID)
	if err != nil {
		log.Warn("cannot tell whether the job is still this worker's", "err", err)
		return false
	}
	if now.State == "running" && now.Attempt == job.Attempt && now.By == w.self.String() {
		return false
	}
	if now.State == "running" {
		log.Warn(fmt.Sprintf("job was taken over by attempt %d; results dropped", now.Attempt), "by", now.By)
	} else {
		log.Warn(fmt.Sprintf("job was taken over (now %s at attempt %d); results dropped", now.State, now.Attempt))
	}
	return true
}
