package cli

import (
	"context"
	"errors"

	"github.com/proxyline/proxyline/internal/queue"
)

// openStore opens the queue database with access (queue.Migrate for the commands that make a
// queue, queue.ReadOnly for status and export). A database that is not there or holds no queue
// is the user's mistake (exit 2: a mistyped --database); a permission problem or any other
// failure is a runtime error (exit 3). Either way the error names the database and the cause.
func openStore(ctx context.Context, env *Env, db queue.DatabaseFlag, access queue.Access) (*queue.Store, error) {
	st, err := queue.Open(ctx, db.Config(access, env.Log))
	if errors.Is(err, queue.ErrNoDatabase) || errors.Is(err, queue.ErrNoSchema) {
		return nil, usageError("%w", err)
	}
	return st, err
}
