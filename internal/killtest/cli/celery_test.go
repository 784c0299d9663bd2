package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/testkit"
)

// TestCelerySystems is the seed's test 5 against a real Celery 5 pipeline
// (testdata/celeryapp, Debian's python3-celery and python3-redis, a private redis-server, the
// lab, real mubeng): the app as the seed wrote it must fail `orphans` with `script` and mubeng
// in the evidence, with the seed's short checks too, and with its fix every check must pass.
// scenarios/examples/celery.yaml, the documented template, runs the seed's app and must fail
// the same way. Skipped when Celery, redis-server, script or mubeng is missing; under CI that
// is a failure instead.
func TestCelerySystems(t *testing.T) {
	t.Parallel()
	bin := celeryBin(t)
	script := `script -q /dev/null -c \S*mubeng -f \S+ --check`
	cases := []struct {
		name     string
		file     string
		failOnly []string // checks that must fail; every other check must pass
		evidence []string // regexes the orphans check's evidence must match
	}{
		{name: "bad-celery-seed", file: filepath.Join("..", "testdata", "bad-celery-seed.yaml"),
			failOnly: []string{"orphans"}, evidence: []string{script}},
		{name: "bad-celery-seed-short", file: filepath.Join("..", "testdata", "bad-celery-seed-short.yaml"),
			failOnly: []string{"orphans"}, evidence: []string{script}},
		{name: "good-celery-fixed", file: filepath.Join("..", "testdata", "good-celery-fixed.yaml")},
		{name: "example", file: filepath.Join("..", "..", "..", "scenarios", "examples", "celery.yaml"),
			failOnly: []string{"orphans"}, evidence: []string{script}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			js := filepath.Join(out, "r.json")
			start := time.Now()
			res := killtest(t, "run", "--bin", bin, "--out", out, "--json", js, "--seed", "7", c.file)
			t.Logf("%s: exit %d in %v", c.name, res.code, time.Since(start).Round(time.Millisecond))
			wantCode := 1
			if c.failOnly == nil {
				wantCode = 0
			}
			if res.code != wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, wantCode, res.stdout, res.stderr)
			}
			checks := celeryChecks(t, js)
			if failed := checkFailures(t, checks); !slices.Equal(failed, c.failOnly) {
				t.Errorf("failed checks %v, want exactly %v\n%s", failed, c.failOnly, res.stdout)
			}
			for _, ch := range checks {
				if ch.Name != "orphans" {
					continue
				}
				for _, re := range c.evidence {
					match := func(e json.RawMessage) bool { return regexp.MustCompile(re).Match(e) }
					if !slices.ContainsFunc(ch.Evidence, match) {
						t.Errorf("no orphans evidence matches %q:\n%s", re, ch.Evidence)
					}
				}
			}
		})
	}
}

type celeryCheck struct {
	checkJSON
	Evidence []json.RawMessage `json:"evidence"`
}

// celeryChecks reads the checks of the only scenario run in a JSON report, and fails on a
// harness or cleanup error. Evidence items stay raw JSON: the tests look for command lines
// anywhere in them, whatever the fields are called.
func celeryChecks(t *testing.T, path string) []celeryCheck {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Scenarios []struct {
			HarnessError string        `json:"harness_error"`
			CleanupError string        `json:"cleanup_error"`
			Checks       []celeryCheck `json:"checks"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("json report: %v", err)
	}
	if len(r.Scenarios) != 1 {
		t.Fatalf("%d scenario runs in the report, want 1", len(r.Scenarios))
	}
	sc := r.Scenarios[0]
	if sc.HarnessError != "" || sc.CleanupError != "" {
		t.Fatalf("harness: %q cleanup: %q", sc.HarnessError, sc.CleanupError)
	}
	return sc.Checks
}

// celeryBin returns a directory for --bin with proxyline (built here, without -race: the lab
// is part of the system under test) and mubeng. It skips the test when something the Celery
// scenarios need is missing, and fails it under CI, where .ci/run installs them: a missing
// dependency must never let the Celery scenarios pass or vanish silently.
func celeryBin(t *testing.T) string {
	t.Helper()
	var missing []string
	// /usr/bin/python3, as the scenarios run it: python3 from PATH may be a pyenv one.
	if out, err := exec.Command("/usr/bin/python3", "-c", "import celery, redis").CombinedOutput(); err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		missing = append(missing, fmt.Sprintf("Celery for /usr/bin/python3 (apt-get install python3-celery python3-redis: %v: %s)", err, lines[len(lines)-1]))
	}
	for _, prog := range []string{"script", "redis-server"} {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, prog)
		}
	}
	mubeng, err := findMubeng()
	if err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) > 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("the Celery scenarios need %s, missing under CI", strings.Join(missing, "; "))
		}
		t.Skipf("skipping the Celery scenarios: %s missing (under CI this fails)", strings.Join(missing, "; "))
	}
	dir := t.TempDir()
	if err := os.Symlink(testkit.BuildBinary(t, "./cmd/proxyline", testkit.NoRace()), filepath.Join(dir, "proxyline")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mubeng, filepath.Join(dir, "mubeng")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// findMubeng looks for mubeng in PATH, then in shared/peers/ next to the repository or one of
// its parents (/work/shared/peers/mubeng on the development and CI machines).
func findMubeng() (string, error) {
	if p, err := exec.LookPath("mubeng"); err == nil {
		return filepath.Abs(p)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "shared", "peers", "mubeng")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
		if dir == filepath.Dir(dir) {
			return "", errors.New("mubeng (not in PATH nor in shared/peers/ above " + wd + ")")
		}
	}
}

// guardHarness is a child subreaper (so nothing of the test is left to PID 1) that starts a
// "worker" process; the worker runs the fix's guard over `script -q /dev/null -c 'sleep M'`
// (sleep in script's own session), prints the guard's exit status, then idles. The harness
// prints the worker's pid, waits for its stdin to close, then kills and reaps everything left
// below it (all of it, should the guard have failed) and exits.
const guardHarness = `
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
guard, marker, timeout = sys.argv[1:4]
worker = subprocess.Popen([sys.executable, "-c", """if 1:
    import os, subprocess, sys, time
    guard, marker, timeout = sys.argv[1:4]
    r = subprocess.run([sys.executable, "-I", guard, str(os.getpid()), timeout, "--",
                        "script", "-q", "/dev/null", "-c", "sleep " + marker], start_new_session=True)
    print("guard exit", r.returncode, flush=True)
    time.sleep(600)
""", guard, marker, timeout])
print("worker", worker.pid, flush=True)
sys.stdin.read()
# SIGKILL our children (the worker; whatever was re-parented to us if the guard failed), reap,
# and repeat until none is left. Unreaped children's pids cannot be reused: killing them is safe.
while True:
    for d in os.listdir("/proc"):
        try:
            if d.isdigit() and int(open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                os.kill(int(d), 9)
        except OSError:
            pass
    try:
        os.wait()
    except ChildProcessError:
        break
`

// TestCeleryGuard proves the fix's guard (testdata/celeryapp/proxies/guard.py) on its own,
// without Celery: when the process that started it is SIGKILLed, `script` and its child in a
// session of its own are gone at once; when its timeout passes, it kills the tree and exits 124.
func TestCeleryGuard(t *testing.T) {
	t.Parallel()
	var missing []string
	for _, prog := range []string{"/usr/bin/python3", "script"} {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, prog)
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("the guard test needs %s, missing under CI", strings.Join(missing, ", "))
		}
		t.Skipf("skipping: %s missing (under CI this fails)", strings.Join(missing, ", "))
	}
	guard, err := filepath.Abs(filepath.Join("..", "testdata", "celeryapp", "proxies", "guard.py"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("worker-killed", func(t *testing.T) {
		t.Parallel()
		marker := fmt.Sprintf("600.%d", time.Now().UnixNano()%1e9)
		h := startGuardHarness(t, guard, marker, "120")
		worker := h.worker(t)
		testkit.WaitFor(t, time.Minute, "script and its sleep", func() bool { return len(processesWith(t, "sleep "+marker)) >= 2 }) // script and sleep
		if err := syscall.Kill(worker, syscall.SIGKILL); err != nil {                                                               // not reaped yet: still ours
			t.Fatal(err)
		}
		killed := time.Now()
		testkit.WaitFor(t, time.Minute, "no sleep left", func() bool { return len(processesWith(t, "sleep "+marker)) == 0 })
		t.Logf("script and sleep gone %v after the worker's SIGKILL", time.Since(killed).Round(time.Millisecond))
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		marker := fmt.Sprintf("600.%d", time.Now().UnixNano()%1e9+1)
		h := startGuardHarness(t, guard, marker, "1")
		h.worker(t)
		if line := h.line(t); line != "guard exit 124" {
			t.Fatalf("worker said %q, want guard exit 124", line)
		}
		if left := processesWith(t, "sleep "+marker); len(left) > 0 {
			t.Fatalf("processes left after the guard's timeout: %v", left)
		}
	})
}

type guardRun struct {
	lines chan string
}

// startGuardHarness starts guardHarness; closing its stdin at cleanup makes it reap and exit.
func startGuardHarness(t *testing.T, guard, marker, timeout string) guardRun {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "-c", guardHarness, guard, marker, timeout)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("guard harness: %v", err)
		}
	})
	lines := make(chan string, 4)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return guardRun{lines}
}

// line returns the harness's next output line, failing after 30 s.
func (g guardRun) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-g.lines:
		if !ok {
			t.Fatal("guard harness exited")
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("no line from the guard harness within 30s")
	}
	return ""
}

// worker reads the "worker PID" line.
func (g guardRun) worker(t *testing.T) int {
	t.Helper()
	var pid int
	if _, err := fmt.Sscanf(g.line(t), "worker %d", &pid); err != nil || pid <= 1 {
		t.Fatalf("bad worker line: %v", err)
	}
	return pid
}
