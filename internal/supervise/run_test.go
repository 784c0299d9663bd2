package supervise

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunExitStatusAndOutput(t *testing.T) {
	s := newStarted(t, Config{Name: "exit", Grace: 300 * time.Millisecond})
	tests := []struct {
		name     string
		args     []string
		pty      bool
		limit    int64
		wantCode int
		wantSig  string
		wantOut  string
		wantErr  string
		trunc    bool
	}{
		{name: "exit 3", args: []string{"-c", "echo out; echo err >&2; exit 3"}, wantCode: 3, wantOut: "out\n", wantErr: "err\n"},
		{name: "signal", args: []string{"-c", "kill -USR1 $$"}, wantCode: -1, wantSig: "SIGUSR1"},
		{name: "stdin is /dev/null", args: []string{"-c", "cat; test -t 0 || echo notty"}, wantOut: "notty\n"},
		{name: "pty", args: []string{"-c", "test -t 0 && test -t 1 && echo tty"}, pty: true, wantOut: "tty\r\n"},
		{name: "truncated", args: []string{"-c", "head -c 100000 /dev/zero | tr '\\0' x"}, limit: 10, wantOut: "xxxxxxxxxx", trunc: true},
		{name: "cookie set", args: []string{"-c", "c=${" + CookieEnv + "#*:}; echo ${c%%:*}"}, wantOut: strconv.Itoa(os.Getpid()) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			res, err := s.Run(context.Background(), Spec{Path: "/bin/sh", Args: tt.args, Stdout: &out, Stderr: &errb, PTY: tt.pty, OutputLimit: tt.limit})
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tt.wantCode || res.Signal != tt.wantSig || res.Signaled != (tt.wantSig != "") {
				t.Errorf("result %+v, want code %d signal %q", res, tt.wantCode, tt.wantSig)
			}
			if out.String() != tt.wantOut || errb.String() != tt.wantErr {
				t.Errorf("stdout %q stderr %q, want %q %q", out.String(), errb.String(), tt.wantOut, tt.wantErr)
			}
			if res.Truncated != tt.trunc {
				t.Errorf("truncated %v, want %v", res.Truncated, tt.trunc)
			}
			if len(res.Escaped) != 0 {
				t.Errorf("escaped %v, want none", res.Escaped)
			}
		})
	}
}

func TestRunStartError(t *testing.T) {
	s := newStarted(t, Config{Name: "starterr"})
	notExec := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []Spec{{Path: "/nonexistent/checker"}, {Path: "no-such-checker-in-path"}, {Path: notExec}, {}} {
		if _, err := s.Run(context.Background(), spec); !errors.Is(err, ErrStart) {
			t.Errorf("Run(%q) = %v, want an error wrapping ErrStart", spec.Path, err)
		}
	}
	// A command that ran and failed is not a start error.
	res, err := s.Run(context.Background(), Spec{Path: "sh", Args: []string{"-c", "exit 127"}})
	if err != nil || res.ExitCode != 127 {
		t.Errorf("exit 127: %+v, %v; want the status and no error", res, err)
	}
}

// fixtureCase is one misbehaving task.
type fixtureCase struct {
	name string
	path string
	args []string
	pty  bool
}

func fixtureCases(t testing.TB) []fixtureCase {
	return []fixtureCase{
		{name: "sleep", path: fixtureBin(t), args: []string{"sleep"}},
		{name: "setsid escapee", path: fixtureBin(t), args: []string{"escapee"}},
		{name: "double-fork", path: fixtureBin(t), args: []string{"doublefork"}},
		{name: "ignores SIGTERM", path: fixtureBin(t), args: []string{"ignoreterm"}},
		{name: "SIGSTOPs itself", path: fixtureBin(t), args: []string{"sigstop"}},
		{name: "script wrapper", path: "script", args: []string{"-q", "/dev/null", "-c", fixtureBin(t) + " escapee"}},
		{name: "zombie maker", path: fixtureBin(t), args: []string{"zombie"}},
		{name: "listening port", path: fixtureBin(t), args: []string{"listen"}},
		{name: "pty escapee", path: fixtureBin(t), args: []string{"escapee"}, pty: true},
	}
}

// layerSets are the layer combinations the fixture tests run under; each must leave nothing.
var layerSets = []struct {
	name    string
	disable Layers
}{
	{"all", Layers{}},
	{"no pidns", Layers{PIDNamespace: true}},
	{"no cgroup", Layers{Cgroup: true}},
	{"pgid+cookie only", Layers{Pdeathsig: true, Cgroup: true, PIDNamespace: true, Subreaper: true}},
}

// TestTimeoutLeavesNothing is case (a): every fixture, timed out, under every layer set that
// claims to contain it, leaves zero processes with its cookie, zero zombies, and its port free.
func TestTimeoutLeavesNothing(t *testing.T) {
	for _, ls := range layerSets {
		t.Run(ls.name, func(t *testing.T) {
			// Zombies from earlier tests (with -count > 1: inits re-parented to this process after
			// a mini-worker's death, once no supervisor here reaps) are not this test's.
			before := zombieChildren(t)
			s := newStarted(t, Config{Name: "timeout", Disable: ls.disable, Grace: 300 * time.Millisecond})
			t.Run("group", func(t *testing.T) { timeoutFixtures(t, s) })
			// No task runs now: no zombie may be left with us as parent, no cookie of ours alive.
			if z := slices.DeleteFunc(zombieChildren(t), func(pid int) bool { return slices.Contains(before, pid) }); len(z) != 0 {
				t.Errorf("zombie children of the worker: %v", describe(z))
			}
			if left := cookieOwnedBy(t, os.Getpid(), "timeout-"); len(left) != 0 {
				t.Errorf("survivors: %s", describe(left))
			}
		})
	}
}

func timeoutFixtures(t *testing.T, s *Supervisor) {
	for _, fc := range fixtureCases(t) {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			out := newReadyWriter("ready")
			started := make(chan int, 1)
			done := make(chan struct{})
			var res Result
			var err error
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				defer close(done)
				res, err = s.Run(ctx, Spec{Path: fc.path, Args: fc.args, PTY: fc.pty, Stdout: out, Timeout: 30 * time.Second,
					Started: func(pid int) { started <- pid }})
			}()
			select {
			case <-out.ready:
			case <-done:
				t.Fatalf("task ended before ready: %+v %v, output %q", res, err, out.String())
			case <-time.After(20 * time.Second):
				t.Fatalf("fixture not ready, output %q", out.String())
			}
			before := cookieOwnedBy(t, os.Getpid(), "timeout-")
			if len(before) == 0 {
				t.Fatal("no process with the task cookie while the task runs: the check below could not fail")
			}
			cancel() // same path as Spec.Timeout, driven by the test so it is deterministic
			<-done
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err %v, want context.Canceled", err)
			}
			// Run returns only after cleanup: survivors must already be gone.
			task := res.TaskID + ""
			if left := cookieOwnedBy(t, os.Getpid(), task); len(left) != 0 {
				t.Errorf("survivors after Run returned: %s", describe(left))
			}
			if port := lineValue(out.String(), "port"); port != 0 {
				ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
				if err != nil {
					t.Errorf("port %d still held: %v", port, err)
				} else {
					ln.Close()
				}
			}
		})
	}
}

func TestSpecTimeout(t *testing.T) {
	s := newStarted(t, Config{Name: "spectimeout", Grace: 200 * time.Millisecond})
	res, err := s.Run(context.Background(), Spec{Path: fixtureBin(t), Args: []string{"ignoreterm"}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || !res.Signaled {
		t.Errorf("result %+v: want timed out and killed by a signal", res)
	}
	if res.Duration > 5*time.Second {
		t.Errorf("took %v", res.Duration)
	}
	if left := cookieOwnedBy(t, os.Getpid(), res.TaskID); len(left) != 0 {
		t.Errorf("survivors: %s", describe(left))
	}
}

// TestEscapeeAfterExit: the main process exits at once but leaves a setsid'd grandchild. With
// containment layers it is reported and killed; with only the process group layer it survives
// and is reported honestly, never hidden.
func TestEscapeeAfterExit(t *testing.T) {
	t.Run("contained", func(t *testing.T) {
		t.Parallel()
		s := newStarted(t, Config{Name: "esc-all", Grace: 300 * time.Millisecond})
		res, err := s.Run(context.Background(), Spec{Path: fixtureBin(t), Args: []string{"escapee", "exit"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 0 || len(res.Escaped) != 1 {
			t.Errorf("result %+v: want exit 0 and one escapee", res)
		}
		if left := cookieOwnedBy(t, os.Getpid(), res.TaskID); len(left) != 0 {
			t.Errorf("survivors: %s", describe(left))
		}
	})
	t.Run("process group only", func(t *testing.T) {
		t.Parallel()
		s := newStarted(t, Config{Name: "esc-pgid", Grace: 300 * time.Millisecond,
			Disable: Layers{Pdeathsig: true, Cgroup: true, PIDNamespace: true, Subreaper: true, Cookie: true}})
		out := newReadyWriter("ready")
		res, err := s.Run(context.Background(), Spec{Path: fixtureBin(t), Args: []string{"escapee", "exit"}, Stdout: out})
		if err != nil {
			t.Fatal(err)
		}
		gc := lineValue(out.String(), "grandchild")
		t.Cleanup(func() { _ = syscall.Kill(gc, syscall.SIGKILL) }) // by pid, verified below
		left := cookieOwnedBy(t, os.Getpid(), res.TaskID)
		if len(left) != 1 || left[0] != gc {
			t.Fatalf("survivors %v, want exactly the grandchild %d", left, gc)
		}
		if len(res.Escaped) != 1 || res.Escaped[0] != gc {
			t.Errorf("Escaped %v, want [%d]", res.Escaped, gc)
		}
	})
}

func TestStopKillsRunningTasks(t *testing.T) {
	s := newStarted(t, Config{Name: "stop", Grace: 200 * time.Millisecond})
	out := newReadyWriter("ready")
	errc := make(chan error, 1)
	fixture := fixtureBin(t)
	go func() {
		_, err := s.Run(context.Background(), Spec{Path: fixture, Args: []string{"escapee"}, Stdout: out})
		errc <- err
	}()
	<-out.ready
	stopSupervisor(t, s)
	stopSupervisor(t, s) // idempotent
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Errorf("err %v, want ErrStopped", err)
	}
	if _, err := s.Run(context.Background(), Spec{Path: "/bin/true"}); !errors.Is(err, ErrStopped) {
		t.Errorf("Run after Stop: %v", err)
	}
	if left := cookieOwnedBy(t, os.Getpid(), "stop-"); len(left) != 0 {
		t.Errorf("survivors: %s", describe(left))
	}
	if _, err := os.Stat(s.ownerDir); s.ownerDir != "" && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("owner cgroup %s not removed: %v", s.ownerDir, err)
	}
}

func TestLayersDetected(t *testing.T) {
	s := newStarted(t, Config{Name: "layers"})
	l := s.Layers()
	t.Logf("layers here: %+v", l)
	if !l.ProcessGroup || !l.Pdeathsig || !l.Cookie {
		t.Errorf("basic layers missing: %+v", l)
	}
	if os.Getenv("CI") != "" && os.Geteuid() == 0 && (!l.Cgroup || !l.PIDNamespace || !l.Subreaper) {
		t.Errorf("on a root CI machine all layers must be on: %+v", l)
	}
	off := newStarted(t, Config{Name: "layersoff", Disable: Layers{Cgroup: true, PIDNamespace: true}})
	if got := off.Layers(); got.Cgroup || got.PIDNamespace {
		t.Errorf("Disable ignored: %+v", got)
	}
}

// zombieChildren lists zombies whose parent is this process.
func zombieChildren(t testing.TB) []int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var z []int
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 2 && f[0] == "Z" && f[1] == self {
			pid, _ := strconv.Atoi(e.Name())
			z = append(z, pid)
		}
	}
	return z
}
