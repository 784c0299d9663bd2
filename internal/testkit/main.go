package testkit

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxyline/proxyline/internal/proctab"
)

// settle bounds how long Main waits, after the tests, for descriptors and child processes that
// are being closed or reaped by goroutines that have not quite finished. It is a failure bound:
// a run without leaks does not wait for it.
const settle = 10 * time.Second

// Option configures Main.
type Option func(*config)

type config struct {
	subreaper bool
	cookies   []string
	goleak    []goleak.Option
	cleanups  []func() error
	out       io.Writer
}

// IgnoreGoroutines passes goleak options (goleak.IgnoreTopFunction, goleak.IgnoreAnyFunction...)
// to the goroutine check, for goroutines a dependency keeps on purpose. Say why next to each.
func IgnoreGoroutines(opts ...goleak.Option) Option {
	return func(c *config) { c.goleak = append(c.goleak, opts...) }
}

// Cleanup runs f after the tests and before the leak checks, for what TestMain set up for every
// test (a shared supervisor, a server): what it leaves behind is a leak too. Cleanups run in the
// order given; an error fails the run.
func Cleanup(f func() error) Option {
	return func(c *config) { c.cleanups = append(c.cleanups, f) }
}

// Subreaper is for packages that run a supervisor (internal/supervise) inside the test process.
// The supervisor makes the process a child subreaper, so orphans of its tasks are re-parented to
// the test binary; those that exit after their supervisor stopped are nobody's to wait for and
// stay zombies. With Subreaper, zombie children are reaped (by pid, never wait(-1)) and listed on
// stderr instead of failing the run; a child that still runs fails it as always.
func Subreaper() Option { return func(c *config) { c.subreaper = true } }

// Cookie adds a process check for a test cookie: the tests tag every process they start with the
// environment variable kv ("KEY=value"), and any process still carrying it after the tests (and
// the Cleanup functions) is reported and killed, wherever it was re-parented to. This catches
// what the child process check cannot: grandchildren that escaped (setsid, double fork) and were
// adopted by init or a subreaper.
func Cookie(kv string) Option {
	return func(c *config) { c.cookies = append(c.cookies, kv) }
}

// Main runs the tests of m and exits: it is a package's whole TestMain, after whatever the test
// binary does when it is re-executed as a fixture or a task's init. After the tests (and the
// Cleanup functions) it checks that nothing was left behind, and fails the run with a report on
// stderr naming what was:
//
//   - goroutines (go.uber.org/goleak, with the IgnoreGoroutines options);
//   - file descriptors opened during the tests and still open, by number and target, except those
//     Go itself keeps (see tolerated);
//   - child processes of the test binary still running or never waited for, and processes with a
//     Cookie; they are killed.
//
// Goroutines and descriptors are checked only when the tests passed (a failed test leaks by
// nature); processes always, so that none outlives the run. Main also owns BuildBinary's
// directory.
func Main(m *testing.M, opts ...Option) {
	c := config{out: os.Stderr}
	for _, o := range opts {
		o(&c)
	}
	os.Exit(run(m, &c))
}

// run is Main without the exit.
func run(m *testing.M, c *config) int {
	warmUp()
	if err := startBuilds(); err != nil {
		fmt.Fprintln(c.out, err)
		return 1
	}
	defer endBuilds()
	fdsBefore, err := openFDs()
	if err != nil {
		fmt.Fprintln(c.out, "testkit:", err)
		return 1
	}
	kidsBefore, err := children()
	if err != nil {
		fmt.Fprintln(c.out, "testkit:", err)
		return 1
	}
	code := m.Run()
	for _, f := range c.cleanups {
		if err := f(); err != nil {
			fmt.Fprintln(c.out, "testkit: cleanup:", err)
			code = 1
		}
	}
	if !checkChildren(c.out, kidsBefore, c.subreaper) {
		code = 1
	}
	for _, kv := range c.cookies {
		if !checkCookie(c.out, kv) {
			code = 1
		}
	}
	if code != 0 {
		return code
	}
	if err := goleak.Find(c.goleak...); err != nil {
		fmt.Fprintf(c.out, "testkit: goroutine leak: %v\n", err)
		code = 1
	}
	if !checkFDs(c.out, fdsBefore) {
		code = 1
	}
	return code
}

// checkChildren reports (and kills) child processes started during the tests that are still
// there after settle. It returns false when there were some. With adopted, zombies are reaped and
// listed without failing (see Subreaper).
func checkChildren(out io.Writer, before map[proctab.Key]proctab.Proc, adopted bool) bool {
	var left []proctab.Proc
	var err error
	poll(settle, func() bool {
		left, err = newChildren(before)
		if adopted {
			left = reapZombies(out, left)
		}
		return err == nil && len(left) == 0
	})
	if err != nil {
		fmt.Fprintln(out, "testkit: process check:", err)
		return false
	}
	if len(left) == 0 {
		return true
	}
	lines := make([]string, len(left))
	for i, p := range left {
		lines[i] = describeChild(p)
		killChild(p)
	}
	fmt.Fprintf(out, "testkit: process leak: %d child process(es) left by the tests (killed now):\n\t%s\n",
		len(left), strings.Join(lines, "\n\t"))
	return false
}

// checkCookie reports (and kills) processes carrying the cookie kv that are still there after
// settle. It returns false when there were some.
func checkCookie(out io.Writer, kv string) bool {
	var left []proctab.Proc
	var err error
	poll(settle, func() bool {
		left, err = proctab.WithEnv(kv)
		return err == nil && len(left) == 0
	})
	if err != nil {
		fmt.Fprintf(out, "testkit: check for processes with %s: %v\n", kv, err)
		return false
	}
	if len(left) == 0 {
		return true
	}
	lines := make([]string, len(left))
	for i, p := range left {
		lines[i] = describeChild(p) + fmt.Sprintf(" (ppid %d)", p.PPID)
		killChild(p)
	}
	fmt.Fprintf(out, "testkit: process leak: %d process(es) with %s left by the tests (killed now):\n\t%s\n",
		len(left), kv, strings.Join(lines, "\n\t"))
	return false
}

// checkFDs reports descriptors opened during the tests and still open after settle. It returns
// false when there were some.
func checkFDs(out io.Writer, before fdSet) bool {
	var leaked []string
	var err error
	poll(settle, func() bool {
		leaked, err = newFDs(before)
		return err == nil && len(leaked) == 0
	})
	if err != nil {
		fmt.Fprintln(out, "testkit: fd check:", err)
		return false
	}
	if len(leaked) == 0 {
		return true
	}
	fmt.Fprintf(out, "testkit: fd leak: %d descriptor(s) opened by the tests and still open:\n\t%s\n",
		len(leaked), describeFDs(leaked))
	return false
}
