package detect

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/proctab"
)

// testCookie is unique per test binary, so leftovers of another run are never attributed.
var testCookie = "KILLTEST_RUN=detect-test-" + strconv.Itoa(os.Getpid())

func newObserver(t *testing.T) *observe.Observer {
	t.Helper()
	o, err := observe.New(observe.Config{Cookie: testCookie, Interval: 20 * time.Millisecond,
		EnrichEvery: 100 * time.Millisecond, ReapGrace: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := o.Stop(context.Background()); err != nil {
			t.Errorf("stop observer: %v", err)
		}
	})
	return o
}

// component is a started process the test drives through stdin/stdout.
type component struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// start starts a component like the runner: own process group, the cookie, Own. Cleanup closes
// its stdin, kills its group and waits.
func start(t *testing.T, o *observe.Observer, env []string, name string, args ...string) *component {
	t.Helper()
	return startWith(t, o, func(cmd *exec.Cmd) { cmd.Env = append(cmd.Env, env...) }, name, args...)
}

// startWith is start with a hook to adjust the command before it starts.
func startWith(t *testing.T, o *observe.Observer, adjust func(*exec.Cmd), name string, args ...string) *component {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), testCookie)
	adjust(cmd)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	o.Own(cmd.Process.Pid)
	t.Cleanup(func() {
		in.Close()
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		_ = cmd.Wait()
		reapGroup(t, pgid)
	})
	return &component{cmd: cmd, in: in, out: bufio.NewScanner(out)}
}

// fixture starts the test binary itself in a fixture mode.
func fixture(t *testing.T, o *observe.Observer, mode string) *component {
	t.Helper()
	return start(t, o, []string{fixtureEnv + "=" + mode}, os.Args[0], "-test.run=^$")
}

// cycle asks the fixture for one cycle and waits for its answer.
func (c *component) cycle(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.in, "go\n"); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "ok")
}

func (c *component) expect(t *testing.T, want string) string {
	t.Helper()
	if !c.out.Scan() {
		t.Fatalf("fixture ended: %v", c.out.Err())
	}
	if got := c.out.Text(); want != "" && got != want {
		t.Fatalf("fixture said %q, want %q", got, want)
	}
	return c.out.Text()
}

// stop stops a component the way a runner does: SIGTERM to its group, wait.
func (c *component) stop(t *testing.T) {
	t.Helper()
	c.in.Close()
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	_ = c.cmd.Wait()
}

// killLeftover kills a leftover process after checking its identity and reaps it if it is our
// child (we are a subreaper).
func killLeftover(t *testing.T, pid int, startTime uint64) {
	t.Helper()
	p, err := proctab.Stat(pid)
	if err != nil || p.StartTime != startTime {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if p.PPID == os.Getpid() {
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED, nil); err != nil && !errors.Is(err, unix.ECHILD) {
			t.Errorf("reap %d: %v", pid, err)
		}
	}
}

// cleanupLeftovers kills whatever the observer still attributes at the end of the test.
func cleanupLeftovers(t *testing.T, o *observe.Observer) {
	t.Cleanup(func() {
		_ = o.Refresh()
		for _, p := range o.Alive() {
			if !p.Own {
				killLeftover(t, p.PID, p.StartTime)
			}
		}
	})
}

func requireVerdict(t *testing.T, r Result, want Verdict) {
	t.Helper()
	if r.Verdict != want {
		t.Fatalf("%s verdict = %s (%s), want %s; evidence %+v", r.Check, r.Verdict, r.Summary, want, r.Evidence)
	}
}

// reapGroup reaps the members of process group pgid that re-parented to the test process (a
// subreaper while an observer runs) after their group was killed, so no zombie outlives the
// test. Targeted at the group, never wait4(-1).
func reapGroup(t *testing.T, pgid int) {
	t.Helper()
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PGID, pgid, &info, unix.WEXITED, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			if !errors.Is(err, unix.ECHILD) {
				t.Errorf("reap group %d: %v", pgid, err)
			}
			return
		}
	}
}
