package queue

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/proxyline/proxyline/internal/check"
)

// Defaults of the set-up guard (WorkerConfig.SetupFailureLimit and SetupBackoff).
const (
	// unprovenLimit is how many checker failures in a row, before this worker completed any
	// job, make the next ones count as the worker's set-up.
	unprovenLimit            = 3
	defaultSetupFailureLimit = 5
	defaultSetupBackoff      = time.Second
	maxSetupBackoff          = 30 * time.Second
)

// setupGuard keeps a worker whose own set-up is broken (an external checker's program gone, a
// judge it cannot prepare, no temporary directory, the database unavailable: errors wrapping
// check.ErrSetup, and failures to record results) from eating the queue. Such a failure is not
// the job's: the job is snoozed (River does not count a snooze as an attempt) for a back-off that
// doubles with each failure in a row (1 s, 2 s, 4 s, ... at most 30 s), and the failure is logged
// at ERROR. Failures that come within the current back-off step of the last counted one (the
// other running jobs hitting the same breakage) count once. When limit failures in a row were
// counted (about 15 s of unbroken failure with the defaults), the guard trips: the worker stops
// and its process exits 3, leaving the jobs to workers that can work. A job that completes resets
// the count.
//
// A checker that fails on every chunk (an --exec tool that exits 1 whatever it is given, a
// mistyped flag of it) is the worker's set-up too, but its failures look like a chunk's. Until
// the worker has completed one job, the unprovenLimit-th checker failure in a row and the ones
// after it are taken as set-up failures (the first ones use an attempt each, as a bad chunk's
// would); once a job completed, the checker works here and its failures are the chunks' again.
type setupGuard struct {
	limit   int
	backoff time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	count   int       // guarded by mu: failures counted in a row
	next    time.Time // guarded by mu: failures before this belong to the last counted step
	err     error     // guarded by mu: the failure that tripped the guard
	proven  bool      // guarded by mu: a job completed since the worker started
	failing int       // guarded by mu: checker failures in a row while not proven
	tripped chan struct{}
}

func newSetupGuard(limit int, backoff time.Duration, log *slog.Logger) *setupGuard {
	return &setupGuard{limit: limit, backoff: backoff, log: log, tripped: make(chan struct{})}
}

// step is the back-off after count failures in a row.
func (g *setupGuard) step(count int) time.Duration {
	d := g.backoff
	for i := 1; i < count && d < maxSetupBackoff; i++ {
		d *= 2
	}
	return min(d, maxSetupBackoff)
}

// failed records a set-up failure of job and returns what its Work returns: a snooze.
func (g *setupGuard) failed(job *rivertype.JobRow, err error) error {
	now := time.Now()
	g.mu.Lock()
	if g.count == 0 || !now.Before(g.next) {
		g.count++
		g.next = now.Add(g.step(g.count))
	}
	count, snooze := g.count, g.step(g.count)
	trip := count >= g.limit && g.err == nil
	if trip {
		g.err = fmt.Errorf("%d set-up failures in a row, the last: %w", count, err)
	}
	g.mu.Unlock()
	g.log.Error("worker set-up failed; the job is handed back without using an attempt",
		"job", job.ID, "attempt", job.Attempt, "failures_in_a_row", count, "limit", g.limit, "retry_in", snooze, "err", err)
	if trip {
		g.log.Error("worker cannot work: stopping it", "failures_in_a_row", count, "err", err)
		close(g.tripped)
	}
	return river.JobSnooze(snooze)
}

// ok records that a job completed: the set-up works.
func (g *setupGuard) ok() {
	g.mu.Lock()
	g.count, g.proven, g.failing = 0, true, 0
	g.mu.Unlock()
}

// checkerFailed classifies a failure of the checker on a chunk: err as it is (the chunk's), or
// wrapped in check.ErrSetup when the worker has not completed a job yet and the checker has now
// failed unprovenLimit times in a row.
func (g *setupGuard) checkerFailed(err error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proven {
		return err
	}
	g.failing++
	if g.failing < unprovenLimit {
		return err
	}
	return fmt.Errorf("%w: the checker failed on %d chunks in a row and has not checked one since this worker started: %w",
		check.ErrSetup, g.failing, err)
}

// cause returns the error that tripped the guard, or nil.
func (g *setupGuard) cause() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}
