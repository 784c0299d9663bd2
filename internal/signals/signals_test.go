package signals

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// TestTwoStages sends real signals to this process: the first cancels the context and leaves
// force open, the second closes force; stop ends the goroutine (goleak checks).
func TestTwoStages(t *testing.T) {
	ctx, force, stop := Notify(context.Background())
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("first SIGTERM did not cancel the context")
	}
	select {
	case <-force:
		t.Fatal("force closed after one signal")
	default:
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-force:
	case <-time.After(10 * time.Second):
		t.Fatal("second signal did not close force")
	}
	stop()
	stop() // idempotent
}

// TestStopWithoutSignal: a program that ends normally cancels its context by stop, and force
// stays open.
func TestStopWithoutSignal(t *testing.T) {
	ctx, force, stop := Notify(context.Background())
	stop()
	if ctx.Err() == nil {
		t.Fatal("context not canceled by stop")
	}
	select {
	case <-force:
		t.Fatal("force closed without a signal")
	default:
	}
}
