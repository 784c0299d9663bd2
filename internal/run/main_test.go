package run

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/proxyline/proxyline/internal/supervise"
)

// The proxyline binary of the process tests, built once (with -race when the tests run with it)
// into binDir, which TestMain removes.
var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(leftoverEnv); dir != "" {
		os.Exit(makeLeftover(dir))
	}
	code := func() int {
		dir, err := os.MkdirTemp("", "proxyline-run-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binDir = dir
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// binary returns the proxyline binary, building it on first use.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "proxyline")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", append(args, "./cmd/proxyline")...)
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, b)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// leftoverEnv makes the test binary a dead run's supervisor: makeLeftover.
const leftoverEnv = "PROXYLINE_RUN_TEST_LEFTOVER"

// makeLeftover starts a supervisor named as run's, makes a task directory in dir and exits
// without stopping it: what a run SIGKILLed while a task of its own had a directory leaves.
func makeLeftover(dir string) int {
	sup, err := supervise.New(supervise.Config{Name: "run", TempDir: dir, SkipStartSweep: true,
		Disable: supervise.Layers{PIDNamespace: true, Cgroup: true, Subreaper: true}})
	if err == nil {
		err = sup.Start(context.Background())
	}
	if err == nil {
		_, err = sup.MkdirTask("")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
