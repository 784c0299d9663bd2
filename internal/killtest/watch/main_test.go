package watch

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// leakyBin is the fixture program (testdata/leaky), built once by TestMain.
var leakyBin string

// runPrefix starts the value of every test system's cookie (LEAKY_SYSTEM), so that TestMain
// can find and report what a test left behind.
var runPrefix = fmt.Sprintf("watchtest-%d-", os.Getpid())

func TestMain(m *testing.M) {
	_ = unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	dir, err := os.MkdirTemp("", "watch-leaky-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	leakyBin = filepath.Join(dir, "leaky")
	args := []string{"build", "-o", leakyBin}
	args = append(args, "github.com/proxyline/proxyline/internal/killtest/watch/testdata/leaky")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the leaky fixture: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if left := leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: fixture processes left behind (killed now): %v\n", left)
		code = 1
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: goroutines leaked: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// leftovers kills (identity checked) and names the fixture processes still alive.
func leftovers() []string {
	procs, err := proctab.NewReader().Snapshot(nil)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, p := range procs {
		if p.State == 'Z' {
			continue
		}
		env, err := proctab.Environ(p.PID)
		if err != nil || !strings.Contains(strings.Join(env, "\n"), "LEAKY_SYSTEM="+runPrefix) {
			continue
		}
		args, _ := proctab.Cmdline(p.PID)
		out = append(out, fmt.Sprintf("pid %d %q", p.PID, args))
		if again, err := proctab.Stat(p.PID); err == nil && again.StartTime == p.StartTime {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
	return out
}

var runSeq atomic.Int64

// system is a leaky system under a reaper (a tiny service manager).
type system struct {
	run    string
	reaper *exec.Cmd
}

// startSystem starts `leaky worker MODE RUN` under a reaper and waits for it to be ready; the
// test's cleanup stops the reaper, which kills everything it holds.
func startSystem(t *testing.T, mode string) *system { return startSystemIn(t, mode, "") }

// startSystemIn is startSystem with the worker born in the cgroup directory dir ("": the
// reaper's own cgroup).
func startSystemIn(t *testing.T, mode, dir string) *system {
	t.Helper()
	run := fmt.Sprintf("%s%s-%d", runPrefix, mode, runSeq.Add(1))
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"reaper", "LEAKY_SYSTEM=" + run}
	if dir != "" {
		args = append(args, "--cgroup", dir)
	}
	cmd := exec.Command(leakyBin, append(args, "--", leakyBin, "worker", mode, run)...)
	cmd.Stdout, cmd.Stderr = pw, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	ready := make(chan struct{})
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			if sc.Text() == "ready" && !once {
				close(ready)
				once = true
			}
		}
	}()
	s := &system{run: run, reaper: cmd}
	t.Cleanup(func() { s.stop(t) })
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatalf("leaky worker %s: not ready within 60 s", mode)
	}
	return s
}

func (s *system) stop(t *testing.T) {
	_ = s.reaper.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.reaper.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = s.reaper.Process.Kill()
		<-done
		t.Errorf("reaper of %s: no exit within 60 s of SIGTERM", s.run)
	}
}

// load reads a watch file of testdata with ${RUN} set to the system's run id.
func load(t *testing.T, name, run string) *File {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	f, err := parse(name, data, func(k string) (string, bool) {
		if k == "RUN" {
			return run, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// scanUntil scans every 50 ms until done(report) holds (then returns the report) or the
// deadline (a failure bound: 60 s) passes; every report goes to each first.
func scanUntil(t *testing.T, w *Watcher, each func(*Report), done func(*Report) bool) *Report {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := w.Scan(context.Background())
		if each != nil {
			each(r)
		}
		if done(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no verdict within 60 s; last report: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasKind(r *Report, kind string) bool {
	for _, f := range r.Findings {
		if f.Kind == kind {
			return true
		}
	}
	return false
}
