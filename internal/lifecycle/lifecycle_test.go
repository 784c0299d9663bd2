package lifecycle

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func TestStartStop(t *testing.T) {
	t.Parallel()
	var o Once
	var starts, stops atomic.Int32
	start := func() error { starts.Add(1); return nil }
	stop := func(context.Context) error { stops.Add(1); return errors.New("task-3 did not end") }
	if err := o.Start(start); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := o.Start(start); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start = %v, want ErrStarted", err)
	}
	for i := range 3 {
		if err := o.Stop(context.Background(), stop); err == nil || err.Error() != "task-3 did not end" {
			t.Errorf("Stop %d = %v, want the stop's own error each time", i, err)
		}
	}
	if err := o.Start(start); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after Stop = %v, want ErrStopped", err)
	}
	if starts.Load() != 1 || stops.Load() != 1 {
		t.Errorf("start ran %d times, stop %d times: want once each", starts.Load(), stops.Load())
	}
}

func TestStopWithoutStart(t *testing.T) {
	t.Parallel()
	var o Once
	ran := false
	if err := o.Stop(context.Background(), func(context.Context) error { ran = true; return nil }); err != nil || ran {
		t.Errorf("Stop without Start = %v (stop ran: %v), want nil without running stop", err, ran)
	}
	if err := o.Start(func() error { t.Error("start ran after Stop"); return nil }); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after Stop = %v, want ErrStopped", err)
	}
}

func TestFailedStart(t *testing.T) {
	t.Parallel()
	var o Once
	boom := errors.New("no listener")
	if err := o.Start(func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Start = %v, want its own error", err)
	}
	if err := o.Start(func() error { return nil }); !errors.Is(err, ErrStarted) {
		t.Errorf("Start after a failed start = %v, want ErrStarted", err)
	}
	if err := o.Stop(context.Background(), func(context.Context) error { t.Error("stop ran after a failed start"); return nil }); err != nil {
		t.Errorf("Stop after a failed start = %v, want nil", err)
	}
}

// The stop function drains until its context ends; the context of any Stop call cuts it, with
// that context's cause, and every call returns the one result once the stop is complete.
func TestStopCut(t *testing.T) {
	t.Parallel()
	var o Once
	if err := o.Start(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	draining := make(chan struct{})
	stop := func(cut context.Context) error {
		close(draining)
		<-cut.Done() // a drain that never ends by itself
		return context.Cause(cut)
	}
	first := make(chan error, 1)
	go func() { first <- o.Stop(context.Background(), stop) }() // no deadline: drains for ever
	<-draining
	select {
	case err := <-first:
		t.Fatalf("Stop returned %v before its stop was cut", err)
	default:
	}
	force := errors.New("second SIGTERM")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(force)
	if err := o.Stop(ctx, stop); !errors.Is(err, force) {
		t.Errorf("cutting Stop = %v, want the cut's cause", err)
	}
	if err := <-first; !errors.Is(err, force) {
		t.Errorf("first Stop = %v, want the same result", err)
	}
}

// A Stop during a Start waits for the Start, then stops what it started.
func TestStopDuringStart(t *testing.T) {
	t.Parallel()
	var o Once
	inStart, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var events []string
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	startErr := make(chan error, 1)
	go func() {
		startErr <- o.Start(func() error { close(inStart); <-release; note("started"); return nil })
	}()
	<-inStart
	stopErr := make(chan error, 1)
	go func() {
		stopErr <- o.Stop(context.Background(), func(context.Context) error { note("stopped"); return nil })
	}()
	if err := o.Start(func() error { return nil }); !errors.Is(err, ErrStarted) && !errors.Is(err, ErrStopped) {
		t.Errorf("Start during Start = %v, want ErrStarted or ErrStopped", err)
	}
	close(release)
	if err := <-startErr; err != nil {
		t.Errorf("Start = %v", err)
	}
	if err := <-stopErr; err != nil {
		t.Errorf("Stop = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0] != "started" || events[1] != "stopped" {
		t.Errorf("events %v, want [started stopped]", events)
	}
}

func TestConcurrentStop(t *testing.T) {
	t.Parallel()
	var o Once
	if err := o.Start(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	var stops atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := o.Stop(context.Background(), func(context.Context) error { stops.Add(1); return nil }); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
	}
	wg.Wait()
	if n := stops.Load(); n != 1 {
		t.Errorf("stop ran %d times, want 1", n)
	}
}
