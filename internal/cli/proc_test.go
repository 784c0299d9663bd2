package cli

import (
	"errors"
	"github.com/proxyline/proxyline/internal/testkit"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mainProc is this test binary run as proxyline (see TestMain and asMainEnv): a real process, as
// a user runs it.
type mainProc struct {
	name   string
	cmd    *exec.Cmd
	stdout testkit.Buffer
	stderr testkit.Buffer
	done   chan struct{}
	err    error // set before done is closed
}

// procOpts are how startMain runs the process.
type procOpts struct {
	env    []string  // extra environment
	stdin  io.Reader // default: none
	nobody bool      // run as uid/gid 65534 (setpriv) so that file modes apply (root ignores them)
}

// startMain starts proxyline with args; the test's cleanup kills it (SIGKILL to its pid) if it
// still runs, and waits for it.
func startMain(t *testing.T, o procOpts, args ...string) *mainProc {
	t.Helper()
	p := &mainProc{name: strings.Join(args, " "), done: make(chan struct{})}
	bin := os.Args[0]
	if o.nobody {
		bin = nobodyBinary(t)
		args = append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)
		bin = "setpriv"
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr, p.cmd.Stdin = &p.stdout, &p.stderr, o.stdin
	p.cmd.Env = append(append(os.Environ(), asMainEnv+"=1", "PROXYLINE_LOG_LEVEL=debug"), o.env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("proxyline %s stderr:\n%s", p.name, p.stderr.String())
		}
	})
	return p
}

// wait waits up to d for the process to exit and returns its exit code (-1 for a signal).
func (p *mainProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("proxyline %s still running after %s", p.name, d)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("proxyline %s: %v", p.name, p.err)
	return 0
}

func (p *mainProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s to %s: %v", sig, p.name, err)
	}
}

// runMain runs proxyline with args to its end (within 2 minutes) and returns its exit code,
// stdout and stderr.
func runMain(t *testing.T, o procOpts, args ...string) (int, string, string) {
	t.Helper()
	p := startMain(t, o, args...)
	code := p.wait(t, 2*time.Minute)
	return code, p.stdout.String(), p.stderr.String()
}

// nobodyBinary copies this test binary where uid 65534 may run it, once per test.
func nobodyBinary(t *testing.T) string {
	t.Helper()
	dir := worldDir(t)
	dst := filepath.Join(dir, "proxyline")
	in, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// worldDir is a temporary directory every user may enter (t.TempDir's parent is private).
func worldDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "proxyline-cli-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeTestFile writes content to a new file in dir with mode.
func writeTestFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}
