package supervise

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startMiniWorker starts the test binary as a separate worker process supervising one fixture,
// and waits until the fixture is ready. It returns the worker's command.
func startMiniWorker(t *testing.T, bits string, fc fixtureCase) (*exec.Cmd, *readyWriter, <-chan struct{}) {
	t.Helper()
	return startMiniWorkerSpec(t, miniWorkerSpec{Bits: bits, Path: fc.path, Args: fc.args, PTY: fc.pty}, "ready")
}

// startMiniWorkerSpec is startMiniWorker for any spec, waiting for a line starting with want.
func startMiniWorkerSpec(t *testing.T, ws miniWorkerSpec, want string) (*exec.Cmd, *readyWriter, <-chan struct{}) {
	t.Helper()
	spec, err := json.Marshal(ws)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"="+string(spec), noRaceSleep)
	out := newReadyWriter(want)
	cmd.Stdout = out
	cmd.Stderr = testWriter{t}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by its pidfd-backed handle; a no-op once it has exited (kills a stopped one too)
		<-waited
		killCookieOwnedBy(t, cmd.Process.Pid, "")
		// A SIGKILLed worker leaves its (empty) cgroup directory: remove it, and only it.
		if _, err := Sweep(context.Background(), SweepConfig{Owner: cmd.Process.Pid, Grace: 100 * time.Millisecond}); err != nil {
			t.Errorf("clean up after worker %d: %v", cmd.Process.Pid, err)
		}
	})
	select {
	case <-out.ready:
	case <-waited:
		t.Fatalf("worker exited before the fixture was ready: %q", out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("fixture not ready: %q", out.String())
	}
	if len(cookieOwnedBy(t, cmd.Process.Pid, "")) == 0 {
		t.Fatal("no process carries the worker's cookie: the survivor check could not fail")
	}
	return cmd, out, waited
}

// TestWorkerDies is cases (b) and (c): the worker gets SIGTERM or SIGKILL while a fixture
// runs. With every layer, nothing with the worker's cookie may survive.
func TestWorkerDies(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		for _, fc := range fixtureCases(t) {
			t.Run(unixSigName(sig)+"/"+fc.name, func(t *testing.T) {
				t.Parallel()
				cmd, out, _ := startMiniWorker(t, "", fc)
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				waitNoCookie(t, cmd.Process.Pid, "", 10*time.Second)
				if sig == syscall.SIGTERM {
					deadline := time.Now().Add(10 * time.Second)
					for !strings.Contains(out.String(), "done ") && time.Now().Before(deadline) {
						time.Sleep(10 * time.Millisecond) // poll with a deadline
					}
					if !strings.Contains(out.String(), "done ") {
						t.Errorf("worker did not finish its task cleanly: %q", out.String())
					}
				}
			})
		}
	}
}

// TestWorkerKilledFallbacks: with the PID namespace off, a setsid escapee outlives a SIGKILLed
// worker (only the kernel-enforced layer catches that); the next start-up sweep, here Sweep,
// removes it and the dead worker's cgroup. With every layer but the process group and cookie
// off, the same holds.
func TestWorkerKilledFallbacks(t *testing.T) {
	for _, tc := range []struct{ name, bits string }{
		{"no pidns", "n"},
		{"pgid+cookie only", "dcns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, out, waited := startMiniWorker(t, tc.bits, fixtureCase{path: fixtureBin(t), args: []string{"escapee"}})
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-waited // the worker is dead and reaped: its cookie names a dead owner now
			left := cookieOwnedBy(t, cmd.Process.Pid, "")
			if len(left) == 0 {
				t.Fatal("expected the escapee to outlive the worker without a PID namespace")
			}
			// Owner keeps this sweep from touching other tests' leftovers (and hiding their failures).
			rep, err := Sweep(context.Background(), SweepConfig{Owner: cmd.Process.Pid, Grace: 300 * time.Millisecond, Log: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			// The fixture's main process may still be dying of its parent-death signal; the
			// escapee is the one only the sweep can stop.
			gc := lineValue(out.String(), "grandchild")
			stopped := false
			for _, p := range rep.Processes {
				stopped = stopped || (p.PID == gc && p.Action == "stopped")
			}
			if !stopped {
				t.Errorf("sweep did not stop the escapee %d (left after the kill: %v): %+v", gc, left, rep)
			}
			waitNoCookie(t, cmd.Process.Pid, "", 5*time.Second)
			if strings.Contains(tc.bits, "c") || !Detect(t.Context(), Config{}).Cgroup {
				return // no cgroup layer (switched off, or not writable here: not root): nothing to remove
			}
			if len(rep.Cgroups) != 1 || rep.Cgroups[0].Action != "removed" {
				t.Errorf("the dead worker's cgroup: %+v, want one, removed", rep.Cgroups)
			}
			for _, c := range rep.Cgroups {
				if _, err := os.Stat(c.Path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("cgroup %s still exists: %v", c.Path, err)
				}
			}
		})
	}
}

func unixSigName(sig syscall.Signal) string {
	if sig == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGTERM"
}
