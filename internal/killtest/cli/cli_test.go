package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// bins is a directory with the killtest binary and the known-bad programs, built once.
var bins string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "killtest-cli-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bins = dir
		args := []string{"build", "-o", dir}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/proxyline/proxyline/cmd/killtest", "github.com/proxyline/proxyline/internal/killtest/testdata/portholder", "github.com/proxyline/proxyline/internal/killtest/testdata/goodworker")
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
			return 1
		}
		code := m.Run()
		// goleak.VerifyTestMain would run the tests again: check leaks after this one run.
		if err := goleak.Find(); code == 0 && err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			return 1
		}
		return code
	}()
	os.Exit(code)
}

type result struct {
	code   int
	stdout string
	stderr string
}

// killtest runs the built binary with its own TMPDIR (kept run dirs land in the test's dir).
func killtest(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(bins, "killtest"), args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run killtest: %v", err)
	}
	return result{code, out.String(), errb.String()}
}

type suiteJSON struct {
	Verdict   string `json:"verdict"`
	ExitCode  int    `json:"exit_code"`
	Scenarios []struct {
		Name         string `json:"name"`
		Verdict      string `json:"verdict"`
		HarnessError string `json:"harness_error"`
		CleanupError string `json:"cleanup_error"`
		Reproduce    string `json:"reproduce"`
		Checks       []struct {
			Name    string `json:"name"`
			Verdict string `json:"verdict"`
			Summary string `json:"summary"`
		} `json:"checks"`
	} `json:"scenarios"`
}

func readJSON(t *testing.T, path string) suiteJSON {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s suiteJSON
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("json report: %v", err)
	}
	return s
}

// TestKnownSystems is the detectors' and runner's proof: each known-bad system fails exactly
// its check and passes every other; the known-good system passes everything.
func TestKnownSystems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file     string
		failOnly []string // checks that must fail; every other check must pass
	}{
		{"good.yaml", nil},
		{"bad-orphan.yaml", []string{"orphans"}},
		{"bad-setsid.yaml", []string{"orphans"}},
		{"bad-fd.yaml", []string{"fd-growth"}},
		{"bad-memory.yaml", []string{"memory-growth"}},
		{"bad-port.yaml", []string{"ports"}},
		{"bad-zombie.yaml", []string{"zombies"}},
		{"bad-lossy-queue.yaml", []string{"history"}},
		// The seed's Python/Celery/Redis pipeline in small (testdata/pyqueue): see needPyqueue.
		{"bad-pyqueue-script.yaml", []string{"orphans"}},
		{"good-pyqueue-fixed.yaml", nil},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			if strings.Contains(c.file, "pyqueue") {
				needPyqueue(t)
			}
			out := t.TempDir()
			js := filepath.Join(out, "r.json")
			res := killtest(t, "run", "--bin", bins, "--out", out, "--json", js, "--seed", "7", filepath.Join("..", "testdata", c.file))
			wantCode := 1
			if c.failOnly == nil {
				wantCode = 0
			}
			if res.code != wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, wantCode, res.stdout, res.stderr)
			}
			s := readJSON(t, js)
			if len(s.Scenarios) != 1 {
				t.Fatalf("%d scenarios in report", len(s.Scenarios))
			}
			sc := s.Scenarios[0]
			if sc.HarnessError != "" || sc.CleanupError != "" {
				t.Fatalf("harness: %q cleanup: %q", sc.HarnessError, sc.CleanupError)
			}
			var failed []string
			for _, ch := range sc.Checks {
				switch ch.Verdict {
				case "fail":
					failed = append(failed, ch.Name)
				case "unknown":
					t.Errorf("check %s unknown: %s", ch.Name, ch.Summary)
				}
			}
			sort.Strings(failed)
			if !slices.Equal(failed, c.failOnly) {
				t.Errorf("failed checks %v, want exactly %v\n%s", failed, c.failOnly, res.stdout)
			}
			if !strings.Contains(sc.Reproduce, "--seed 7") {
				t.Errorf("reproduce %q lacks the seed", sc.Reproduce)
			}
			md, err := os.ReadFile(filepath.Join(out, "stress_test_results.md"))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range c.failOnly {
				if !strings.Contains(string(md), "### "+f+": FAIL") {
					t.Errorf("markdown has no evidence section for %s", f)
				}
			}
		})
	}
}

// needPyqueue skips a pyqueue case when python3, script or Redis on 127.0.0.1:6379 is missing,
// and fails it instead under CI, where they must be there: a missing dependency must never let
// the case pass (or vanish) silently.
func needPyqueue(t *testing.T) {
	t.Helper()
	var missing []string
	for _, prog := range []string{"python3", "script"} {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, prog)
		}
	}
	if err := pingRedis("127.0.0.1:6379"); err != nil {
		missing = append(missing, fmt.Sprintf("Redis on 127.0.0.1:6379 (%v)", err))
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the pyqueue scenarios need %s, missing under CI", strings.Join(missing, ", "))
	}
	t.Skipf("skipping the pyqueue scenario: %s missing (under CI this fails)", strings.Join(missing, ", "))
}

// pingRedis sends PING and expects +PONG.
func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", buf)
	}
	return nil
}

func TestReportsAndExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	if err := os.WriteFile(missing, []byte("name: missing-program\nneeds: [killtest-no-such-program]\ncomponents:\n  - {name: a, command: [killtest-no-such-program]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	junit, html, js := filepath.Join(out, "r.xml"), filepath.Join(out, "r.html"), filepath.Join(out, "r.json")
	res := killtest(t, "run", "--out", out, "--junit", junit, "--html", html, "--json", js, "--runs", "2", "--seed", "100",
		missing, filepath.Join("..", "testdata", "bad-lossy-queue.yaml"))
	// A system failure and a scenario the harness cannot judge: failure wins (exit 1).
	if res.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	s := readJSON(t, js)
	if len(s.Scenarios) != 4 {
		t.Fatalf("%d scenario runs, want 4 (2 scenarios × 2 runs)", len(s.Scenarios))
	}
	if s.Scenarios[0].Verdict != "unknown" || !strings.Contains(s.Scenarios[0].HarnessError, "killtest-no-such-program") {
		t.Errorf("missing program: verdict %s, harness error %q", s.Scenarios[0].Verdict, s.Scenarios[0].HarnessError)
	}
	if !strings.Contains(s.Scenarios[1].Reproduce, "--seed 101") {
		t.Errorf("second run reproduce %q, want seed 101", s.Scenarios[1].Reproduce)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var x struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
	}
	if err := xml.Unmarshal(b, &x); err != nil {
		t.Fatalf("junit: %v", err)
	}
	if x.Failures != 2 || x.Errors != 2 {
		t.Errorf("junit failures %d errors %d, want 2 and 2", x.Failures, x.Errors)
	}
	h, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"src=\"http", "href=\"http", "<script src", "<link"} {
		if strings.Contains(string(h), bad) {
			t.Errorf("html has an external asset: %s", bad)
		}
	}
	if !strings.Contains(string(h), "<svg") {
		t.Error("html has no chart")
	}

	// Only the unjudgeable scenario: exit 2.
	if res := killtest(t, "run", "--out", t.TempDir(), missing); res.code != 2 {
		t.Errorf("missing program alone: exit %d, want 2", res.code)
	}
}

func TestValidateAndList(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: x\ncomponents:\n  - name: a\n    sh: x\n    ready: {timout: 1s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := killtest(t, "validate", bad)
	if res.code != 2 || !strings.Contains(res.stderr, "bad.yaml:5: components[0].ready.timout: unknown field") {
		t.Errorf("validate bad: exit %d, stderr %q", res.code, res.stderr)
	}
	res = killtest(t, "validate", filepath.Join("..", "testdata"), filepath.Join("..", "..", "..", "scenarios"), filepath.Join("..", "..", "..", "scenarios", "examples"))
	if res.code != 0 {
		t.Errorf("validate shipped scenarios: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = killtest(t, "list")
	if res.code != 0 || res.stdout == "" {
		t.Errorf("list: exit %d, %q", res.code, res.stdout)
	}
	if res := killtest(t, "run", "--runs", "0"); res.code != 2 {
		t.Errorf("--runs 0: exit %d, want 2", res.code)
	}
	if res := killtest(t, "nope"); res.code != 2 {
		t.Errorf("unknown command: exit %d, want 2", res.code)
	}
}

// TestInterrupt: SIGINT during a run stops the system, cleans up, and exits 2 (not judged).
func TestInterrupt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := filepath.Join(dir, "long.yaml")
	marker := filepath.Join(dir, "started")
	if err := os.WriteFile(sc, []byte(fmt.Sprintf(`name: long
components:
  - name: sleeper
    sh: touch %s; exec sleep 600
    ready: {file: %s}
    stop: {exit: [SIGTERM]}
workload:
  steps:
    - command: [sleep, "600"]
      timeout: 10m
`, marker, marker)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bins, "killtest"), "run", "--out", dir, sc)
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := os.Stat(marker); return err == nil })
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("after SIGINT: %v, want exit 2\n%s", err, out.String())
	}
	// Nothing of the run may survive: no process with the scenario's marker in its command line.
	if left := processesWith(t, marker); len(left) > 0 {
		t.Fatalf("processes left after interrupt: %v", left)
	}
}

// TestBuiltinSuite runs the embedded suite against the real proxyline (built here, without
// -race: it is the system under test). Every scenario must pass: that is proxyline's promise
// (no orphan, nothing lost, graceful exits), judged by the harness. Then the same system with its
// supervision layers switched off must fail exactly the orphans check, which shows that test5's
// pass is proxyline's doing and not a check that cannot fail.
func TestBuiltinSuite(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/proxyline/proxyline/cmd/proxyline").CombinedOutput(); err != nil {
		t.Fatalf("build proxyline: %v\n%s", err, out)
	}
	out := t.TempDir()
	js := filepath.Join(out, "r.json")
	start := time.Now()
	res := killtest(t, "run", "--bin", bin, "--out", out, "--json", js, "--seed", "1")
	t.Logf("built-in suite: exit %d in %v\n%s", res.code, time.Since(start), res.stdout)
	if res.code != 0 {
		t.Errorf("built-in suite: exit %d, want 0 (every scenario passes)\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	s := readJSON(t, js)
	if len(s.Scenarios) < 6 {
		t.Errorf("%d scenarios ran, want the 6 built-ins", len(s.Scenarios))
	}
	for _, sc := range s.Scenarios {
		if sc.HarnessError != "" || sc.CleanupError != "" {
			t.Errorf("%s: harness %q cleanup %q", sc.Name, sc.HarnessError, sc.CleanupError)
		}
	}

	js = filepath.Join(out, "off.json")
	res = killtest(t, "run", "--bin", bin, "--out", t.TempDir(), "--json", js, "--seed", "1",
		filepath.Join("..", "testdata", "bad-proxyline-layers-off.yaml"))
	if res.code != 1 {
		t.Fatalf("layers off: exit %d, want 1\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	var failed []string
	for _, ch := range readJSON(t, js).Scenarios[0].Checks {
		if ch.Verdict != "pass" {
			failed = append(failed, ch.Name+" "+ch.Verdict)
		}
	}
	if !slices.Equal(failed, []string{"orphans fail"}) {
		t.Errorf("layers off: checks not passing %v, want exactly [orphans fail]\n%s", failed, res.stdout)
	}
}
