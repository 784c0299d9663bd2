package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// Tests that killtest gives true verdicts (never a false PASS, UNKNOWN only when it cannot
// judge) on a machine where other work starts and stops processes.

// churn starts short-lived processes (sleep 0.1, six at a time) until the returned stop is
// called, as other work on a shared machine does; it returns how many it started. Processes of
// root are unreadable (environment and all) to an unprivileged harness.
func churn(t *testing.T) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int64
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cmd := exec.Command("sleep", "0.1")
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
				if err := cmd.Start(); err != nil {
					t.Errorf("churn: %v", err)
					return
				}
				started.Add(1)
				_ = cmd.Wait()
			}
		}()
	}
	return func() int {
		cancel()
		wg.Wait()
		return int(started.Load())
	}
}

// openDir makes a directory every user can write (for the unprivileged harness's TMPDIR and
// reports), removed at the end of the test.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "killtest-truth-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestUnprivilegedOnBusyMachine: killtest run as an unprivileged user (nobody), while root
// processes start and stop all the time (their environments unreadable to it) and kernel threads
// rename themselves, gives true verdicts: the known-good system passes (the old rule said
// UNKNOWN for every non-root run) and the known-bad short orphan still fails exactly orphans.
// The report notes the processes it set aside.
func TestUnprivilegedOnBusyMachine(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run killtest as another user (setpriv)")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv")
	}
	bins(t) // mode 0755, with its programs: the unprivileged harness runs them
	cases := []struct {
		file     string
		failOnly string
	}{
		{"good.yaml", ""},
		{"good-orphan-short.yaml", ""},
		{"bad-orphan-short.yaml", "orphans"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			// A harness starved long enough says UNKNOWN on orphans (a true answer, not the
			// system's failure): such a run is repeated, up to 3 times in all.
			for attempt := 1; ; attempt++ {
				stalled := unprivilegedRun(t, c.file, c.failOnly, attempt == 3)
				if !stalled {
					return
				}
				t.Logf("attempt %d: the unprivileged harness was stalled (orphans UNKNOWN)", attempt)
				if attempt == 3 {
					return
				}
			}
		})
	}
}

// unprivilegedRun runs one case of TestUnprivilegedOnBusyMachine as nobody and checks its
// verdicts. It returns true, without failing, when the run's only departure from the expected
// verdicts is an orphans UNKNOWN because the harness was stalled, unless last is set.
func unprivilegedRun(t *testing.T, file, failOnly string, last bool) (stalled bool) {
	t.Helper()
	dir := openDir(t)
	js := filepath.Join(dir, "r.json")
	stop := churn(t)
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		filepath.Join(bins(t), "killtest"), "run", "--bin", bins(t), "--out", dir, "--json", js, "--seed", "3",
		filepath.Join(mustAbs(t, filepath.Join("..", "testdata")), file))
	cmd.Env = append(os.Environ(), "TMPDIR="+dir, "HOME="+dir)
	out, err := cmd.CombinedOutput()
	n := stop()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Scenarios []struct {
			Notes  []string `json:"notes"`
			Checks []struct{ Name, Verdict, Summary string }
		} `json:"scenarios"`
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatalf("exit %d, no report: %v\n%s", code, err, out)
	}
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Scenarios) != 1 {
		t.Fatalf("report: %v %s", err, b)
	}
	var bad []string
	stall := false
	for _, ch := range rep.Scenarios[0].Checks {
		if ch.Verdict == "unknown" && ch.Name == "orphans" && !last &&
			(strings.Contains(ch.Summary, "took no sample of the process table") || strings.Contains(ch.Summary, "could not tell whether")) {
			stall = true
			continue
		}
		if (ch.Verdict != "pass") != (ch.Name == failOnly) || ch.Verdict == "unknown" {
			bad = append(bad, fmt.Sprintf("check %s %s: %s", ch.Name, ch.Verdict, ch.Summary))
		}
	}
	want := 0
	if failOnly != "" {
		want = 1
	}
	switch {
	case len(bad) > 0:
		t.Errorf("want only %q failing (exit %d, churned %d processes):\n%s\n%s", failOnly, code, n, strings.Join(bad, "\n"), out)
	case stall:
		return true
	case code != want:
		t.Errorf("exit %d, want %d (churned %d processes)\n%s", code, want, n, out)
	}
	if !strings.Contains(strings.Join(rep.Scenarios[0].Notes, "\n"), "outside the harness's tree") {
		t.Errorf("no note of the processes set aside (churned %d): %q", n, rep.Scenarios[0].Notes)
	}
	return false
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestPortHeldByAnotherProcess: a fixed port the scenario needs, held before the run by a
// process outside it (portholder, started here), makes the run UNKNOWN (exit 2) naming the
// holder's pid and command; the system is not blamed (no ready or ports failure).
func TestPortHeldByAnotherProcess(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	holder := exec.Command(filepath.Join(bins(t), "portholder"), addr)
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-holder.Process.Pid, syscall.SIGKILL)
		_ = holder.Wait()
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.HasPrefix(line, "listening on") {
		t.Fatalf("portholder: %q %v", line, err)
	}
	_, port, _ := net.SplitHostPort(addr)
	sc := filepath.Join(t.TempDir(), "fixed-port.yaml")
	if err := os.WriteFile(sc, fmt.Appendf(nil, `name: fixed-port
components:
  - name: server
    command: [portholder, %q]
    ready: {tcp: %q, timeout: 3s}
expect:
  orphans: false
  ports:
    ports: [%s]
`, addr, addr, port), 0o644); err != nil {
		t.Fatal(err)
	}
	res := killtest(t, "run", "--bin", bins(t), "--out", t.TempDir(), sc)
	want := fmt.Sprintf("by pid %d (`%s %s`)", holder.Process.Pid, filepath.Join(bins(t), "portholder"), addr)
	if res.code != 2 || !strings.Contains(res.stdout, "already in use before the run") || !strings.Contains(res.stdout, want) {
		t.Fatalf("exit %d, want 2 naming the holder %q\n%s%s", res.code, want, res.stdout, res.stderr)
	}
	if strings.Contains(res.stdout, "FAIL ") {
		t.Errorf("a check failed: the system was blamed for another process's port\n%s", res.stdout)
	}
}
