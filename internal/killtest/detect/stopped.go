package detect

import (
	"context"
	"fmt"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/observe"
)

// StoppedOptions configures Stopped.
type StoppedOptions struct {
	// KilledAt is when the runner last sent SIGKILL to the system (zero: not killed; a process
	// in D then counts from when it entered D).
	KilledAt time.Time
	// DGrace is how long a process may stay in uninterruptible sleep (D) after the kill.
	// Default 5s.
	DGrace time.Duration
	// Poll is the polling period while waiting for D processes. Default 100ms.
	Poll time.Duration
}

// Stopped is the stopped/unkillable detector, run at the end of the scenario: it fails for
// every attributed process in state T or t (stopped by a signal or a tracer: SIGTERM stays
// pending, the process never exits), and for every process in D for more than DGrace after the
// kill (SIGKILL cannot end it until the kernel call returns; Wchan says where it sleeps). It
// polls while a D process may still leave D within DGrace.
func Stopped(ctx context.Context, o *observe.Observer, opts StoppedOptions) Result {
	const check = "stopped"
	grace := opts.DGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	poll := opts.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	var alive []observe.Process
	var res Result
	deadline := time.Now().Add(grace)
	err := pollUntil(ctx, deadline, poll, func() (bool, error) {
		if err := o.Refresh(); err != nil {
			return false, err
		}
		alive = o.Alive()
		var waiting bool
		res, waiting = judgeStopped(alive, opts.KilledAt, grace, time.Now())
		return !waiting, nil
	})
	if err != nil {
		return unknown(check, fmt.Sprintf("could not watch the process table: %v", err))
	}
	return res
}

// judgeStopped decides on the processes alive now. waiting is true while a D process has not
// yet been in D for grace.
func judgeStopped(alive []observe.Process, killedAt time.Time, grace time.Duration, now time.Time) (res Result, waiting bool) {
	res = Result{Check: "stopped"}
	for _, p := range alive {
		switch p.State {
		case 'T', 't':
			e := evidenceOf(p, now)
			e.Class = "stopped"
			e.Detail = fmt.Sprintf("in state %c (stopped) for %s: a SIGTERM stays pending until SIGCONT", p.State,
				hd(now.Sub(p.StateSince)))
			res.Evidence = append(res.Evidence, e)
		case 'D':
			since := p.StateSince
			if killedAt.After(since) {
				since = killedAt
			}
			if d := now.Sub(since); d >= grace {
				e := evidenceOf(p, now)
				e.Class = "unkillable"
				e.Detail = fmt.Sprintf("in uninterruptible sleep (D) for %s after the kill, in kernel function %q",
					hd(d), p.Wchan)
				res.Evidence = append(res.Evidence, e)
			} else {
				waiting = true
			}
		}
	}
	if len(res.Evidence) > 0 {
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%d process(es) stopped or unkillable", len(res.Evidence))
		return res, waiting
	}
	return pass("stopped", fmt.Sprintf("no stopped process, none in D longer than %s", hd(grace))), waiting
}
