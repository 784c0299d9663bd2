package supervise

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lifecycle"
)

// A Stop whose context ends before the tasks are gone cuts their grace period: a task that
// ignores SIGTERM (and has a child that does too) is SIGKILLed at once instead of after Grace (ten
// minutes here, so a cut that does not work hangs the test), and Stop's error names it and wraps
// the context's cause.
func TestStopCutSkipsGrace(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Name: "cut", Grace: 10 * time.Minute, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killCookieOwnedBy(t, os.Getpid(), "cut-") }) // only if the test failed
	out := newReadyWriter("ready")
	type outcome struct {
		res Result
		err error
	}
	runc := make(chan outcome, 1)
	fixture := fixtureBin(t)
	go func() {
		res, err := s.Run(context.Background(), Spec{Path: fixture, Args: []string{"ignoreterm-tree"}, Stdout: out})
		runc <- outcome{res, err}
	}()
	<-out.ready
	force := errors.New("second SIGTERM")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(force)
	stopc := make(chan error, 1)
	go func() { stopc <- s.Stop(ctx) }()
	var stopErr error
	select {
	case stopErr = <-stopc:
	case <-time.After(2 * time.Minute): // a bound for a hang, not a timing assertion
		t.Fatal("Stop with an ended context did not return: the cut did not reach the task")
	}
	run := <-runc
	if !errors.Is(run.err, ErrStopped) {
		t.Errorf("Run = %v, want ErrStopped", run.err)
	}
	if !errors.Is(stopErr, force) || !strings.Contains(stopErr.Error(), run.res.TaskID) {
		t.Errorf("Stop = %v, want the cut's cause and task %s", stopErr, run.res.TaskID)
	}
	if run.res.Signal != "SIGKILL" {
		t.Errorf("task ended by %q, want SIGKILL", run.res.Signal)
	}
	if left := cookieOwnedBy(t, os.Getpid(), "cut-"); len(left) != 0 {
		t.Errorf("survivors: %s", describe(left))
	}
}

// The context given to Start bounds the start-up only: the supervisor runs tasks after it ends.
func TestStartContextIsStartUpOnly(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Name: "startctx", Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer stopSupervisor(t, s)
	cancel()
	if res, err := s.Run(context.Background(), Spec{Path: "/bin/true"}); err != nil || res.ExitCode != 0 {
		t.Errorf("Run after the start context ended = %+v, %v; want exit 0", res, err)
	}
	if err := s.Start(context.Background()); !errors.Is(err, lifecycle.ErrStarted) {
		t.Errorf("second Start = %v, want lifecycle.ErrStarted", err)
	}
}

// A start-up whose context ended fails with that context's error and leaves nothing running.
func TestStartCancelled(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Name: "startcancel", Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Start(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with an ended context = %v, want context.Canceled", err)
	}
	if s.reaper != nil || s.ownerDir != "" {
		t.Errorf("a failed Start left a reaper (%v) or a cgroup %q", s.reaper != nil, s.ownerDir)
	}
	if _, err := s.Run(context.Background(), Spec{Path: "/bin/true"}); !errors.Is(err, ErrStart) {
		t.Errorf("Run after a failed Start = %v, want ErrStart", err)
	}
	stopSupervisor(t, s)
}

func TestStopWithoutStart(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Name: "nostart"})
	if err != nil {
		t.Fatal(err)
	}
	stopSupervisor(t, s)
	if err := s.Start(context.Background()); !errors.Is(err, lifecycle.ErrStopped) {
		t.Errorf("Start after Stop = %v, want lifecycle.ErrStopped", err)
	}
}
