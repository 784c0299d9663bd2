package testkit_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) {
	opts := []testkit.Option{testkit.Cookie(cookie())}
	if os.Getenv(leakEnv) == "adopted" {
		opts = append(opts, testkit.Subreaper())
	}
	testkit.Main(m, opts...)
}

// cookie tags the processes a fixture leaves on purpose beyond its children: it names this test
// binary's process, so a fixture and the tests that run it have different ones.
func cookie() string { return "TESTKIT_COOKIE=" + strconv.Itoa(os.Getpid()) }

// leakEnv makes TestLeakFixture misbehave in one way: the test binary is re-executed as a test
// binary that leaks, and Main must report it.
const leakEnv = "TESTKIT_LEAK"

// kept holds what the "tolerated" fixture must keep reachable until Main's checks (an os.Process
// whose pidfd the garbage collector would otherwise close). Only the fixture process writes it.
var kept []any

// TestLeakFixture is the body of the misbehaving test binaries of TestLeaks; it skips unless
// run by it.
func TestLeakFixture(t *testing.T) {
	switch mode := os.Getenv(leakEnv); mode {
	case "":
		t.Skip("a fixture: run by TestLeaks")
	case "clean":
	case "goroutine":
		block := make(chan struct{})
		go leakedGoroutine(block)
	case "fd":
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("leaked fds %d %d\n", r.Fd(), w.Fd())
		kept = append(kept, r, w)
	case "process":
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("leaked pid %d\n", cmd.Process.Pid)
	case "escapee":
		cmd := exec.Command("setsid", "sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!")
		cmd.Env = append(os.Environ(), cookie())
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("leaked pid %s", out)
	case "zombie", "adopted":
		cmd := exec.Command("true")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, cmd)
	case "tolerated":
		splice(t)
		kept = append(kept, reapedProcess(t))
		fmt.Printf("splice pipes %d, pidfds %d\n", countFDs(t, isSplicePipe), countFDs(t, isPidfd))
	default:
		t.Fatalf("unknown %s %q", leakEnv, mode)
	}
}

// leakedGoroutine blocks until block is closed, which never happens.
func leakedGoroutine(block chan struct{}) { <-block }

// TestLeaks runs test binaries that leak a goroutine, a descriptor, a process, a process that
// escaped with setsid and a background job (known only by its cookie) or a zombie, and
// one that leaves only what Go itself keeps, and checks Main's verdict and report on each.
func TestLeaks(t *testing.T) {
	cases := []struct {
		mode string
		fail bool
		want []string // in the output
	}{
		{"clean", false, nil},
		{"goroutine", true, []string{"testkit: goroutine leak", "testkit_test.leakedGoroutine"}},
		{"fd", true, []string{"testkit: fd leak: 2 descriptor(s)", "-> pipe:["}},
		{"process", true, []string{"testkit: process leak: 1 child", `"sleep 600"`, "still running", "killed now"}},
		{"escapee", true, []string{"testkit: process leak: 1 process(es) with TESTKIT_COOKIE=", `"sleep 600"`, "killed now"}},
		{"adopted", false, []string{"testkit: reaped an adopted zombie: pid", "(true)"}},
		{"zombie", true, []string{"testkit: process leak: 1 child", "never waited for (zombie)"}},
		{"tolerated", false, []string{"pidfds 1"}},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			out, err := runFixture(t, tc.mode)
			if failed := err != nil; failed != tc.fail {
				t.Fatalf("fixture %s: exit error %v, want failure %v; output:\n%s", tc.mode, err, tc.fail, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("fixture %s: output lacks %q:\n%s", tc.mode, w, out)
				}
			}
			if tc.mode == "fd" {
				checkFDsReported(t, out)
			}
			if tc.mode == "process" || tc.mode == "escapee" {
				checkKilled(t, out)
			}
			if tc.mode == "tolerated" {
				checkSpliced(t, out)
			}
		})
	}
}

// runFixture runs this test binary as the fixture mode and returns its output.
func runFixture(t *testing.T, mode string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLeakFixture$", "-test.v")
	cmd.Env = append(os.Environ(), leakEnv+"="+mode)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run fixture %s: %v", mode, err)
	}
	return out.String(), err
}

// checkFDsReported checks that the fd report names both ends of the leaked pipe.
func checkFDsReported(t *testing.T, out string) {
	t.Helper()
	var r, w int
	if _, err := fmt.Sscanf(out[strings.Index(out, "leaked fds "):], "leaked fds %d %d", &r, &w); err != nil {
		t.Fatalf("no fd numbers in the output: %v\n%s", err, out)
	}
	for _, fd := range []int{r, w} {
		if !strings.Contains(out, fmt.Sprintf("fd %d -> pipe:[", fd)) {
			t.Errorf("fd %d not reported:\n%s", fd, out)
		}
	}
}

// checkSpliced checks that the tolerated fixture did hold splice pipes when Main checked its
// descriptors, so that the tolerance was exercised.
func checkSpliced(t *testing.T, out string) {
	t.Helper()
	var n int
	i := strings.Index(out, "splice pipes ")
	if i < 0 {
		t.Fatalf("no splice pipe count in the output:\n%s", out)
	}
	if _, err := fmt.Sscanf(out[i:], "splice pipes %d", &n); err != nil || n < 2 {
		t.Fatalf("the fixture holds %d splice pipe ends (%v), want both ends of one at least:\n%s", n, err, out)
	}
}

// checkKilled checks that the process the fixture leaked does not outlive it.
func checkKilled(t *testing.T, out string) {
	t.Helper()
	i := strings.Index(out, "leaked pid ")
	if i < 0 {
		t.Fatalf("no pid in the output:\n%s", out)
	}
	pid, err := strconv.Atoi(strings.Fields(out[i+len("leaked pid "):])[0])
	if err != nil {
		t.Fatal(err)
	}
	// By identity (pid and start time), not by name: on a busy machine the pid of the killed
	// sleep can soon name another process, and another sleep at that.
	first, err := proctab.Stat(pid)
	if err != nil || !strings.Contains(first.Comm, "sleep") {
		return // already gone (or its pid already reused)
	}
	testkit.WaitFor(t, time.Minute, fmt.Sprintf("leaked process %d to be killed", pid), func() bool {
		p, err := proctab.Stat(pid)
		return err != nil || p.State == 'Z' || p.StartTime != first.StartTime
	})
}

// splice copies between two TCP connections with io.Copy, which splices through a pipe from
// internal/poll's pool and leaves it there (twice: the pool may hold one or two pipes).
func splice(t *testing.T) {
	t.Helper()
	done := make(chan error, 2)
	for range 2 {
		src, dst := tcpPair(t), tcpPair(t)
		go func() {
			_, err := io.Copy(dst[0], src[1]) // *net.TCPConn.ReadFrom(*net.TCPConn): splice
			dst[0].Close()
			done <- err
		}()
		if _, err := src[0].Write(bytes.Repeat([]byte("x"), 1<<16)); err != nil {
			t.Fatal(err)
		}
		src[0].Close()
		if _, err := io.Copy(io.Discard, dst[1]); err != nil {
			t.Fatal(err)
		}
		src[1].Close()
		dst[1].Close()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) [2]*net.TCPConn {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	return [2]*net.TCPConn{c, s}
}

// reapedProcess returns an os.Process (holding a pidfd) of a child that has exited and been
// reaped through another handle.
func reapedProcess(t *testing.T) *os.Process {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p, err := os.FindProcess(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return p
}

// countFDs counts this process's descriptors for which is is true.
func countFDs(t *testing.T, is func(proctab.FD) bool) int {
	t.Helper()
	fds, err := proctab.FDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if is(fd) {
			n++
		}
	}
	return n
}

func isPidfd(fd proctab.FD) bool { return fd.Class == proctab.ClassPidfd }

// isSplicePipe recognises a pipe end with internal/poll's 1 MiB splice buffer.
func isSplicePipe(fd proctab.FD) bool {
	if fd.Class != proctab.ClassPipe {
		return false
	}
	size, err := unix.FcntlInt(uintptr(fd.Num), unix.F_GETPIPE_SZ, 0)
	return err == nil && size == 1<<20
}
