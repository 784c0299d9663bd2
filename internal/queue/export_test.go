package queue

import (
	"context"
	"time"

	"github.com/riverqueue/river/riverdriver"
)

// Exported for the tests of package queue_test.

// WaitMark is the start of a wait.
type WaitMark = waitMark

// MarkWait starts a wait as Store.Wait does.
func MarkWait(ctx context.Context, s *Store) (WaitMark, error) { return s.markWait(ctx) }

// FailedSince reports the jobs that failed since m, as Store.Wait does at its end.
func FailedSince(ctx context.Context, s *Store, m WaitMark) (*WaitReport, error) {
	return s.failedSince(ctx, m)
}

// DBNow reads the database's clock.
func DBNow(ctx context.Context, s *Store) (time.Time, error) { return s.dbNow(ctx) }

// FencedExecutor returns the executor a worker whose River client ID is self writes through, for
// tests of the fence.
func (s *Store) FencedExecutor(self string) riverdriver.Executor { return s.eng.fencedExecutor(self) }
