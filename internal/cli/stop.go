package cli

import (
	"context"
	"errors"
)

// errForced is the cause of a stop context cut by the second signal.
var errForced = errors.New("stop forced by a second signal")

// stopContext returns the context to stop a service with at the end of a command
// (docs/lifecycle.md): ctx's values without its cancellation (the first signal has cancelled ctx
// by then), cut when the second signal closes env.Force, with errForced as its cause. The service
// bounds its own drain (its grace). Call cancel once the stop returned.
func stopContext(ctx context.Context, env *Env) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-env.Force:
			cancel(errForced)
		case <-sctx.Done():
		}
	}()
	return sctx, func() { cancel(nil) }
}

// withoutForced returns err without the parts that only say the second signal cut a stop short
// (they wrap errForced), so that a command that hands its work back on a forced stop exits as
// after a drain; they are logged instead. Other errors stay.
func withoutForced(env *Env, err error) error {
	if err == nil || !errors.Is(err, errForced) {
		return err
	}
	var parts []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	} else {
		parts = []error{err}
	}
	var keep []error
	for _, p := range parts {
		if errors.Is(p, errForced) {
			env.Log.Warn("stop cut short by a second signal", "err", p)
			continue
		}
		keep = append(keep, p)
	}
	return errors.Join(keep...)
}
