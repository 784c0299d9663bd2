// Package lifecycletest checks that a service follows docs/lifecycle.md, with the service's own
// real parts: each service's test says how to build one, how to tell that it serves, and how to
// give it work that outlives a short stop deadline; Run checks the rest, the same way for every
// service (Start returns once serving and its context is start-up only; a second Start fails with
// ErrStarted, a Start after Stop with ErrStopped; Stop before Start, twice and from several
// goroutines; a Stop whose context ends cuts the long work and returns the context's cause).
package lifecycletest

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lifecycle"
)

// Service is the shape every long-lived service has.
type Service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Subject describes the service under test.
type Subject[S Service] struct {
	// New returns a new service, not started. Required. It registers its own clean-up (files,
	// databases) with t; Run stops every service it starts.
	New func(t *testing.T) S
	// Serving fails t unless a started service does its job (answers a request, takes a job,
	// samples). Required.
	Serving func(t *testing.T, s S)
	// NewBusy, if set, builds the service of the cut test instead of New: for a service whose work
	// is fixed when it is built (the scraper's sources), one with work that outlasts the test.
	// New's must then be one whose Stop finds nothing left to drain.
	NewBusy func(t *testing.T) S
	// Busy gives a started service work that does not end by itself for minutes (a slow upstream,
	// a task that ignores SIGTERM), and returns once that work is in flight. Nil for a service
	// with nothing to drain, whose Stop cuts at once: the cut test is then skipped.
	Busy func(t *testing.T, s S)
	// Cut, if set, checks after a cut Stop that the work Busy gave ended (no process, no
	// connection, no running job left).
	Cut func(t *testing.T, s S)
	// StopDeadline is the short deadline of the cut test's Stop. Default 200 ms.
	StopDeadline time.Duration
}

// hang bounds a call that should return: a failure bound, not a timing assertion.
const hang = 2 * time.Minute

// errCut is the cause of the cut test's stop context.
var errCut = errors.New("lifecycletest: stop deadline (the second SIGTERM)")

// Run checks the lifecycle of the subject's service in subtests, one after the other (some
// services may be one per process: the observer's subreaper flag).
func Run[S Service](t *testing.T, sub Subject[S]) {
	t.Helper()
	t.Run("StartServesStop", func(t *testing.T) { startServesStop(t, sub) })
	t.Run("StopBeforeStart", func(t *testing.T) { stopBeforeStart(t, sub) })
	t.Run("ConcurrentStop", func(t *testing.T) { concurrentStop(t, sub) })
	t.Run("StopCuts", func(t *testing.T) {
		if sub.Busy == nil {
			t.Skip("nothing to drain: Stop cuts at once")
		}
		stopCuts(t, sub)
	})
}

// started returns a started service of sub whose Start context has already ended (it bounds the
// start-up only), stopped when t ends if the test did not stop it.
func started[S Service](t *testing.T, newS func(*testing.T) S) S {
	t.Helper()
	s := newS(t)
	ctx, cancel := context.WithCancel(context.Background())
	err := call(t, "Start", func() error { return s.Start(ctx) })
	cancel()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = call(t, "Stop (clean-up)", func() error { return s.Stop(context.Background()) }) })
	return s
}

func startServesStop[S Service](t *testing.T, sub Subject[S]) {
	s := started(t, sub.New)
	sub.Serving(t, s) // after the Start context ended
	if err := call(t, "second Start", func() error { return s.Start(context.Background()) }); !errors.Is(err, lifecycle.ErrStarted) {
		t.Errorf("second Start = %v, want lifecycle.ErrStarted", err)
	}
	first := call(t, "Stop", func() error { return s.Stop(context.Background()) })
	if first != nil {
		t.Errorf("Stop of an idle service = %v, want nil", first)
	}
	if err := call(t, "second Stop", func() error { return s.Stop(context.Background()) }); err != first {
		t.Errorf("second Stop = %v, want the first one's result %v", err, first)
	}
	if err := call(t, "Start after Stop", func() error { return s.Start(context.Background()) }); !errors.Is(err, lifecycle.ErrStopped) {
		t.Errorf("Start after Stop = %v, want lifecycle.ErrStopped", err)
	}
}

func stopBeforeStart[S Service](t *testing.T, sub Subject[S]) {
	s := sub.New(t)
	if err := call(t, "Stop before Start", func() error { return s.Stop(context.Background()) }); err != nil {
		t.Errorf("Stop before Start = %v, want nil", err)
	}
	if err := call(t, "Start after Stop", func() error { return s.Start(context.Background()) }); !errors.Is(err, lifecycle.ErrStopped) {
		t.Errorf("Start after Stop = %v, want lifecycle.ErrStopped", err)
	}
}

func concurrentStop[S Service](t *testing.T, sub Subject[S]) {
	s := started(t, sub.New)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = call(t, "concurrent Stop", func() error { return s.Stop(context.Background()) }) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Stop %d = %v, want nil", i, err)
		}
	}
}

func stopCuts[S Service](t *testing.T, sub Subject[S]) {
	newBusy := sub.NewBusy
	if newBusy == nil {
		newBusy = sub.New
	}
	s := started(t, newBusy)
	sub.Busy(t, s)
	ctx, cancel := context.WithTimeoutCause(context.Background(), cmp.Or(sub.StopDeadline, 200*time.Millisecond), errCut)
	defer cancel()
	// A second caller without a deadline waits for the same stop and gets the same result.
	other := make(chan error, 1)
	go func() { other <- s.Stop(context.Background()) }()
	err := call(t, "Stop with a short deadline", func() error { return s.Stop(ctx) })
	if !errors.Is(err, errCut) {
		t.Errorf("Stop with a short deadline over long work = %v, want an error wrapping the context's cause %q", err, errCut)
	}
	select {
	case err2 := <-other:
		if err2 != err {
			t.Errorf("a concurrent Stop returned %v, want the same result %v", err2, err)
		}
	case <-time.After(hang):
		t.Errorf("a concurrent Stop did not return within %s after the cut one", hang)
	}
	if sub.Cut != nil {
		sub.Cut(t, s)
	}
}

// call runs f, failing t if it hangs.
func call(t testing.TB, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(hang):
		t.Fatalf("%s did not return within %s", what, hang)
		return nil
	}
}
