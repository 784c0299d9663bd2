package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

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
		// Retrying cannot fix its arguments; enqueue validates, so this is a foreign job.
		return river.JobCancel(fmt.Errorf("job %d has bad proxies: %w", job.ID, errors.Join(bad...)))
	}
	if err := job.Args.Options.Validate(); err != nil {
		return river.JobCancel(fmt.Errorf("job %d: %w", job.ID, err))
	}
	chk, err := w.checker(ctx, job.Args.Options)
	if err != nil {
		if w.stopping.Load() && ctx.Err() != nil {
			return river.JobSnooze(0)
		}
		return fmt.Errorf("prepare checker for job %d: %w", job.ID, err)
	}
	start := time.Now()
	results, err := chk.CheckChunk(ctx, given)
	if ctx.Err() != nil {
		if w.stopping.Load() {
			log.Info("job canceled by stop; handing it back")
			return river.JobSnooze(0)
		}
		return fmt.Errorf("job %d: %w", job.ID, context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("check chunk of job %d: %w", job.ID, err)
	}
	if len(results) != len(given) {
		return fmt.Errorf("job %d: checker returned %d results for %d proxies", job.ID, len(results), len(given))
	}
	checks := make([]pool.Check, len(given))
	for i := range given {
		checks[i] = pool.Check{Given: given[i], Result: results[i]}
	}
	// The results are in hand: write them even if a stop begins now, within a bound.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	src := pool.Source{JobID: job.ID, Attempt: job.Attempt, Worker: w.self.String()}
	err = w.store.eng.inJobTx(wctx, job.JobRow, func(db pool.DB) error { return pool.Record(wctx, db, src, checks) })
	if errors.Is(err, ErrJobLost) {
		// Someone handed the job back while we worked (River's cross-machine rescuer). Our
		// results were not written; make sure the job runs again rather than claim it done.
		log.Warn("job was handed back while running; results dropped", "err", err)
		return river.JobSnooze(0)
	}
	if err != nil {
		return fmt.Errorf("record results of job %d: %w", job.ID, err)
	}
	log.Debug("job done", "proxies", len(given), "took", time.Since(start))
	return nil
}
