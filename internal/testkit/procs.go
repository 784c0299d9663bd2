package testkit

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// children returns this process's child processes, by the parent pid of /proc/<pid>/stat. Once
// the tests are over, a child is a process a test started and did not wait for, or, when the
// test binary is a subreaper, an orphan re-parented to it.
func children() (map[proctab.Key]proctab.Proc, error) {
	procs, err := proctab.NewReader().Snapshot(nil)
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	out := make(map[proctab.Key]proctab.Proc)
	for _, p := range procs {
		if p.PPID == self {
			out[p.Key()] = p
		}
	}
	return out, nil
}

// newChildren returns the children that were not there in before.
func newChildren(before map[proctab.Key]proctab.Proc) ([]proctab.Proc, error) {
	now, err := children()
	if err != nil {
		return nil, err
	}
	var left []proctab.Proc
	for k, p := range now {
		if _, ok := before[k]; !ok {
			left = append(left, p)
		}
	}
	slices.SortFunc(left, func(a, b proctab.Proc) int { return a.PID - b.PID })
	return left, nil
}

// describeChild says what a leftover child is, for the report.
func describeChild(p proctab.Proc) string {
	args, _ := proctab.Cmdline(p.PID)
	what := "still running"
	if p.State == 'Z' {
		what = "exited but never waited for (zombie)"
	}
	return fmt.Sprintf("pid %d %q (%s, state %c, pgid %d): %s", p.PID, strings.Join(args, " "), p.Comm, p.State, p.PGID, what)
}

// killChild kills a leftover child with SIGKILL, after checking that its pid still names the
// same process (pid reuse), so that it does not outlive the test binary.
func killChild(p proctab.Proc) {
	again, err := proctab.Stat(p.PID)
	if err != nil || again.StartTime != p.StartTime || again.State == 'Z' {
		return
	}
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
}

// reapZombies waits for the zombies of procs, by pid, lists them on out, and returns the others.
func reapZombies(out io.Writer, procs []proctab.Proc) []proctab.Proc {
	return slices.DeleteFunc(procs, func(p proctab.Proc) bool {
		if p.State != 'Z' {
			return false
		}
		var ws unix.WaitStatus
		if pid, err := unix.Wait4(p.PID, &ws, unix.WNOHANG, nil); err != nil || pid != p.PID {
			return false
		}
		fmt.Fprintf(out, "testkit: reaped an adopted zombie: pid %d (%s)\n", p.PID, p.Comm)
		return true
	})
}
