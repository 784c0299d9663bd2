package check

import "errors"

// ErrSetup marks a failure of the checker's own set-up, not of the proxies it was given: the
// judge cannot be prepared, an external checker's program cannot be found or started, its
// temporary directory cannot be made. Wrap it (fmt.Errorf("...: %w: %w", ErrSetup, err) or
// errors.Join) so that callers can tell, with errors.Is, a checker that cannot work at all from a
// chunk that failed. The queue's worker does not count such a failure against the job: it hands
// the job back and, when its set-up keeps failing, stops.
var ErrSetup = errors.New("checker set-up failed")
