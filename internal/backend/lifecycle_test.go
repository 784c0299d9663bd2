package backend

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/proxy"
)

// TestBackendLifecycle: the external backend's lifecycle with a real tool under its supervisor
// (Open is its Start, as the lab's is). A run that ignores SIGTERM and never ends is long work:
// a Stop whose context ends after 200 ms kills it without its grace and returns an error wrapping
// the context's cause; the run's CheckAll returns; the process is gone; every later or concurrent
// Stop returns the same result.
func TestBackendLifecycle(t *testing.T) {
	t.Parallel()
	mark := "PROXYLINE_BACKEND_LIFE=" + strconv.Itoa(os.Getpid()) // finds the tool's process from here (it runs in a PID namespace)
	b, err := Open(context.Background(), Config{
		Exec: Exec{Template: `sh -c 'trap "" TERM; exec env ` + mark + ` sleep 600' sh {in} {out}`},
		Name: "backend-life",
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := make(chan error, 1)
	go func() {
		checked <- b.CheckAll(context.Background(), []proxy.Proxy{{Scheme: proxy.HTTP, Host: "127.0.0.2", Port: 2000}}, func(check.Result) {})
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		if ps, err := proctab.WithEnv(mark); err == nil && len(ps) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tool did not start within a minute")
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline, not waiting for an event
	}

	cause := errors.New("second SIGTERM")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 200*time.Millisecond, cause)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]error, 4)
	for i := range results {
		wg.Go(func() {
			c := context.Background()
			if i == 0 {
				c = ctx // one caller's deadline cuts the stop for all of them
			}
			results[i] = b.Stop(c)
		})
	}
	wg.Wait()
	if !errors.Is(results[0], cause) {
		t.Errorf("Stop with a short deadline over a run that ignores SIGTERM = %v, want the context's cause", results[0])
	}
	for i, err := range results[1:] {
		if err != results[0] {
			t.Errorf("concurrent Stop %d = %v, want the same result %v", i+1, err, results[0])
		}
	}
	if err := b.Stop(context.Background()); err != results[0] {
		t.Errorf("Stop after Stop = %v, want the same result", err)
	}
	select {
	case err := <-checked:
		if err == nil {
			t.Error("CheckAll of a killed run = nil, want its failure")
		}
	case <-time.After(2 * time.Minute): // a bound for a hang, not a timing assertion
		t.Fatal("CheckAll did not return after Stop")
	}
	if ps, err := proctab.WithEnv(mark); err != nil || len(ps) > 0 {
		t.Errorf("the tool's processes after Stop: %+v (%v), want none", ps, err)
	}
}

// TestBackendInProcessStop: the in-process backend holds nothing: Stop returns nil at once, also
// twice.
func TestBackendInProcessStop(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 1})
	b, err := Open(context.Background(), Config{Judge: check.JudgeConfig{URL: l.JudgeURL()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 2 {
		if err := b.Stop(ctx); err != nil {
			t.Errorf("Stop = %v, want nil", err)
		}
	}
}
