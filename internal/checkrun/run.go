// Package checkrun is one run of `proxyline check`: the proxies (a list, or the lab's, with its
// judge and CA), the checker backend, the results written as they come (to stdout or a file),
// the progress bar, the summary line, and with the lab the comparison with its truth.
package checkrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

// Errors of Run, for errors.Is. Their messages are those of the errors they mark.
var (
	ErrUsage  = errors.New("usage")         // bad flags or configuration: exit 2
	ErrNoLive = errors.New("no live proxy") // the run worked but found no live proxy: exit 1
)

// Config is what to check and how.
type Config struct {
	Proxies []proxy.Proxy  // the list; ignored with Lab
	Lab     bool           // check the proxies of an in-process lab against its judge, and compare with its truth
	Output  string         // the results file; "" for IO.Stdout
	Format  string         // check.FormatText, FormatJSONL or FormatCSV
	All     bool           // also write failed results
	Backend backend.Config // the checker; with Lab, its judge is the lab's
}

// IO is what a run gets from the outside world.
type IO struct {
	Stdout, Stderr io.Writer
	Log            *slog.Logger
	Force          <-chan struct{} // closed by the second signal: return without waiting for checks in flight
	Terminal       bool            // Stderr is a terminal: progress bar and colour
	// StopContext gives the context the backend is stopped with once ctx is done (the command's
	// stop rule: ctx's values, cut by the second signal).
	StopContext func(ctx context.Context) (context.Context, context.CancelFunc)
}

// Run checks the proxies, writes the results and the report, and decides the outcome: the
// backend's failure, else ErrNoLive when no proxy is alive.
//
// Shutdown order, the reverse of the start: the backend (runs of an external tool still going get
// their grace; a second signal cuts), then the lab (no check uses it any more). Their errors are
// joined into the run's.
func Run(ctx context.Context, rio IO, c Config) (err error) {
	in, err := inputOf(ctx, rio, &c)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, in.stop()) }()
	b, err := backend.Open(ctx, c.Backend)
	if errors.Is(err, backend.ErrConfig) {
		return usage(err)
	} else if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := rio.StopContext(ctx)
		defer cancel()
		err = errors.Join(err, b.Stop(sctx))
	}()
	return checkTo(ctx, rio, c, in, b)
}

// checkTo checks in's proxies with b into the output, then reports.
func checkTo(ctx context.Context, rio IO, c Config, in input, b *backend.Backend) error {
	out, err := createOutput(rio.Stdout, c.Output)
	if err != nil {
		return err
	}
	defer out.close() // closed and checked below; this covers early returns
	rw, err := check.NewResultWriter(out, c.Format, c.All)
	if err != nil {
		return usage(err)
	}
	start := time.Now()
	r := newRun(ctx, rio, rw, len(in.proxies), in.truth != nil)
	backendErr, err := r.checkAll(ctx, b, in.proxies)
	if err != nil {
		return err
	}
	if err := out.commit(); err != nil {
		return err
	}
	cond := lab.Conditions{Timeout: c.Backend.Timeout, LiveOnly: c.Backend.Exec.Template != ""}
	return r.report(ctx, in, time.Since(start), cond, backendErr)
}

// input is what a run checks: the proxies of the list, or those of a lab it starts (with the
// lab's judge and CA, and its truth to compare with).
type input struct {
	proxies []proxy.Proxy
	truth   []lab.Truth  // with Lab
	stop    func() error // stops the lab
}

// inputOf takes the list, or starts the lab and points c's judge at it.
func inputOf(ctx context.Context, rio IO, c *Config) (input, error) {
	if !c.Lab {
		return input{proxies: c.Proxies, stop: func() error { return nil }}, nil
	}
	l, err := lab.Start(ctx, lab.Config{Log: rio.Log})
	if err != nil {
		return input{}, fmt.Errorf("start lab: %w", err)
	}
	c.Backend.Judge.URL, c.Backend.Judge.CAPEM = l.JudgeURL(), string(l.CAPEM())
	rio.Log.Info("lab started", "proxies", len(l.Candidates()), "judge", c.Backend.Judge.URL)
	// A lab has nothing to drain: it stops at once.
	stop := func() error { return l.Stop(context.WithoutCancel(ctx)) }
	return input{proxies: l.Candidates(), truth: l.Truth(), stop: stop}, nil
}

// usageError marks an error as the configuration's fault without changing its message.
type usageError struct{ err error }

func usage(err error) error               { return usageError{err} }
func (e usageError) Error() string        { return e.err.Error() }
func (e usageError) Unwrap() error        { return e.err }
func (e usageError) Is(target error) bool { return target == ErrUsage }
