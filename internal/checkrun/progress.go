package checkrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

// run is one run of the checks: it writes each result as it comes, counts them, draws the
// progress bar on a terminal, and keeps the outcomes the lab's truth is compared with.
type run struct {
	io        IO
	rw        *check.ResultWriter
	bar       *progressbar.ProgressBar // nil unless stderr is a terminal
	debug     bool
	sum       *check.Summary
	total     int
	outcomes  []lab.Outcome // with the lab
	keep      bool          // keep outcomes
	writeErr  error
	abandoned atomic.Bool // set when a second signal makes Run return without waiting
}

func newRun(ctx context.Context, rio IO, rw *check.ResultWriter, total int, keep bool) *run {
	r := &run{io: rio, rw: rw, debug: rio.Log.Enabled(ctx, slog.LevelDebug), sum: check.NewSummary(), total: total, keep: keep}
	if rio.Terminal {
		r.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(rio.Stderr),
			progressbar.OptionSetDescription("checking"), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(),
			progressbar.OptionEnableColorCodes(true))
	}
	return r
}

// checkAll checks ps with b until done, or until the second signal (IO.Force), which returns
// at once without waiting for checks in flight. backendErr is the backend's own failure (an
// external run that failed), reported after the results; err stops the run.
func (r *run) checkAll(ctx context.Context, b *backend.Backend, ps []proxy.Proxy) (backendErr, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		backendErr = b.CheckAll(ctx, ps, r.emit)
	}()
	select {
	case <-done:
	case <-r.io.Force:
		r.abandoned.Store(true)
		return nil, errors.New("interrupted twice: exiting without waiting for checks in flight")
	}
	if r.bar != nil {
		_ = r.bar.Finish()
	}
	if r.writeErr != nil {
		return nil, r.writeErr
	}
	return backendErr, r.rw.Flush()
}

// emit takes one result, from one goroutine at a time.
func (r *run) emit(res check.Result) {
	if r.abandoned.Load() {
		return
	}
	r.sum.Add(res)
	if r.debug {
		r.io.Log.Debug("checked", "proxy", res.Proxy.Redacted(), "class", res.Class, "err", res.Err,
			"exit_ip", res.ExitIP, "anonymity", res.Anonymity, "total", res.Total)
	}
	if r.keep {
		r.outcomes = append(r.outcomes, labOutcome(res))
	}
	if r.bar != nil {
		_ = r.bar.Add(1) // a progress bar that cannot draw is no reason to stop
	}
	if res.Class == check.Canceled || r.writeErr != nil {
		return
	}
	r.writeErr = r.rw.Write(res)
}

// report prints the summary (and with the lab the comparison with the truth) on stderr and
// decides the outcome: the backend's failure, else ErrNoLive when no proxy is alive.
func (r *run) report(ctx context.Context, in input, wall time.Duration, cond lab.Conditions, backendErr error) error {
	stderr := r.io.Stderr
	fmt.Fprintln(stderr, r.sum.Line(r.total, wall, r.io.Terminal))
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "interrupted: %d of %d proxies not checked\n", r.total-r.sum.Checked(), r.total)
	}
	if in.truth != nil {
		// An external checker says only which proxies work: only that is compared (cond).
		if err := lab.Compare(in.truth, r.outcomes, cond).Write(stderr); err != nil {
			return err
		}
	}
	if backendErr != nil {
		return backendErr
	}
	if r.sum.Count(check.Alive) == 0 {
		return ErrNoLive
	}
	return nil
}

// labOutcome is a result as the lab's truth is compared with it.
func labOutcome(r check.Result) lab.Outcome {
	return lab.Outcome{Proxy: r.Proxy, Class: string(r.Class), Err: r.Err, ExitIP: r.ExitIP, Anonymity: string(r.Anonymity)}
}
