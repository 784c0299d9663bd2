package testkit_test

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/testkit"
)

// recorder is a testing.TB whose Fatal ends only the goroutine it runs on, and keeps the message.
type recorder struct {
	testing.TB
	mu  sync.Mutex
	msg string // guarded by mu
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

// fatal runs f with a recorder and returns what it failed with ("" when it did not).
func fatal(t *testing.T, f func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msg
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	testkit.WaitFor(t, time.Minute, "the third call", func() bool { return n.Add(1) == 3 })
	if got := n.Load(); got != 3 {
		t.Fatalf("cond called %d times, want 3", got)
	}
	msg := fatal(t, func(tb testing.TB) {
		testkit.WaitFor(tb, 20*time.Millisecond, "never", func() bool { return false })
	})
	if msg != "timed out after 20ms waiting for never" {
		t.Fatalf("failure message %q", msg)
	}
}

func TestWaitForErr(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	testkit.WaitForErr(t, time.Minute, "the second call", func() error {
		if n.Add(1) < 2 {
			return errors.New("not yet")
		}
		return nil
	})
	msg := fatal(t, func(tb testing.TB) {
		testkit.WaitForErr(tb, 20*time.Millisecond, "the port", func() error { return errors.New("connection refused") })
	})
	if msg != "timed out after 20ms waiting for the port: connection refused" {
		t.Fatalf("failure message %q", msg)
	}
}

// TestBuildBinary builds one program from parallel tests: one build, one path, a program that
// runs, built with -race exactly when these tests are.
func TestBuildBinary(t *testing.T) {
	t.Parallel()
	const pkg = "./internal/testkit/testdata/hello"
	paths := make([]string, 4)
	var wg sync.WaitGroup
	for i := range paths {
		wg.Go(func() { paths[i] = testkit.BuildBinary(t, pkg) })
	}
	wg.Wait()
	for _, p := range paths[1:] {
		if p != paths[0] {
			t.Fatalf("two builds of one package: %s and %s", paths[0], p)
		}
	}
	out, err := exec.Command(paths[0], "a", "b").CombinedOutput()
	if err != nil || string(out) != "hello [a b]\n" {
		t.Fatalf("built program: %q, %v", out, err)
	}
	info, err := exec.Command("go", "version", "-m", paths[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, info)
	}
	if race := strings.Contains(string(info), "-race=true"); race != raceEnabled {
		t.Errorf("program built with -race %v, tests run with -race %v:\n%s", race, raceEnabled, info)
	}
	if plain := testkit.BuildBinary(t, pkg, testkit.NoRace()); raceEnabled && plain == paths[0] {
		t.Errorf("NoRace returned the -race build %s", plain)
	}
}

func TestBuildBinaryFails(t *testing.T) {
	t.Parallel()
	msg := fatal(t, func(tb testing.TB) { testkit.BuildBinary(tb, "./internal/testkit/testdata/nosuchprogram") })
	if !strings.Contains(msg, "nosuchprogram") || !strings.Contains(msg, "go [build") {
		t.Fatalf("failure message %q", msg)
	}
}

// TestBuildDir gathers programs in one directory, once per name.
func TestBuildDir(t *testing.T) {
	t.Parallel()
	hello := testkit.Program{Pkg: "./internal/testkit/testdata/hello", Opts: []testkit.BuildOption{testkit.NoRace()}}
	dir := testkit.BuildDir(t, "tools", hello)
	if again := testkit.BuildDir(t, "tools", hello); again != dir {
		t.Fatalf("two directories for one name: %s and %s", dir, again)
	}
	out, err := exec.Command(filepath.Join(dir, "hello")).CombinedOutput()
	if err != nil || string(out) != "hello []\n" {
		t.Fatalf("program in the directory: %q, %v", out, err)
	}
}
