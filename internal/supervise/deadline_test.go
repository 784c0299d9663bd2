package supervise

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/proctab"
)

// TestInitDeadlineWithStoppedWorker is HYGIENE trap 23: a worker stopped right after its task
// started cannot enforce the task's timeout; the task's init must. The task ignores SIGTERM and
// has a child that does too; the mini-worker is SIGSTOPped as soon as it reports the start and
// stays stopped until the whole task is gone (by its cookie), which must happen within
// timeout + grace + deadlineMargin + grace (plus slack). Continued, the worker reports a timeout.
//
// The experiment proves something only when the worker was stopped before it could have ended
// the task itself and the whole tree ran before the deadline ended it. On a loaded machine
// either can miss a short timeout (the fixture's child took 2.5 s to start at load 50), so an
// inconclusive run is repeated with the timeout doubled; a task that outlives the init's
// deadline fails at once, whatever the timeout.
func TestInitDeadlineWithStoppedWorker(t *testing.T) {
	if !Detect(t.Context(), Config{}).PIDNamespace {
		if os.Getenv("CI") != "" {
			t.Fatal("CI needs the PID namespace layer")
		}
		t.Skip("no PID namespace layer here")
	}
	const most = 24 * time.Second
	for timeout := 3 * time.Second; ; timeout *= 2 {
		why := stoppedWorkerDeadline(t, timeout, time.Second)
		if why == "" {
			return
		}
		if timeout >= most {
			t.Fatalf("inconclusive at every task timeout up to %v, last: %s", timeout, why)
		}
		t.Logf("task timeout %v inconclusive (%s): again with %v", timeout, why, 2*timeout)
	}
}

// stoppedWorkerDeadline runs TestInitDeadlineWithStoppedWorker's experiment once with a task
// timeout and the supervisor's grace. It fails t when the init did not end the task in time, and
// returns why the run proves nothing ("" when it proved its point).
func stoppedWorkerDeadline(t *testing.T, timeout, grace time.Duration) (inconclusive string) {
	t.Helper()
	cmd, out, waited := startMiniWorkerSpec(t, miniWorkerSpec{
		Path: fixtureBin(t), Args: []string{"ignoreterm-tree"}, Timeout: timeout, Grace: grace,
	}, "started")
	t0 := time.Now() // after the supervisor's timer started: its timeout is due before t0+timeout
	worker := cmd.Process.Pid
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Runs before startMiniWorkerSpec's clean-up (which SIGKILLs the worker, stopped or not).
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGCONT) })
	workerStopped := func() bool {
		pi, err := readProc(worker)
		return err == nil && (pi.state == "T" || pi.state == "t")
	}
	poll := func(what string, within time.Duration, cond func() bool) time.Time {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v; worker output %q, task processes %s", what, within, out.String(),
					describe(cookieOwnedBy(t, worker, "")))
			}
			time.Sleep(5 * time.Millisecond) // poll with a deadline
		}
		return time.Now()
	}
	// The worker must be stopped before it could have sent SIGKILL (timeout+grace after its
	// start): otherwise the supervisor, not the init, might end the task and this proves nothing.
	if at := poll("worker stopped", 30*time.Second, workerStopped); at.Sub(t0) >= timeout+grace {
		return fmt.Sprintf("worker stopped only %v after the task started", at.Sub(t0))
	}
	// The init, the fixture and its child, all alive while the worker is stopped, before the
	// init's deadline (timeout after its start, so after t0-start-up) can have ended them.
	var tree int
	poll("task tree running or the timeout passed", timeout+grace, func() bool {
		tree = len(cookieOwnedBy(t, worker, ""))
		return tree >= 3 || time.Since(t0) >= timeout
	})
	if tree < 3 {
		return fmt.Sprintf("%d of the task's 3 processes running when its timeout was due", tree)
	}

	limit := timeout + grace + deadlineMargin + grace + 5*time.Second // slack for a loaded machine
	gone := poll("task gone while the worker is stopped", limit-time.Since(t0), func() bool {
		return len(cookieOwnedBy(t, worker, "")) == 0
	})
	if !workerStopped() {
		t.Fatal("the worker was continued by someone; inconclusive")
	}
	// SIGTERM is ignored: only the init's SIGKILL, a grace after its deadline, ends the tree.
	if d := gone.Sub(t0); d < timeout+grace {
		t.Errorf("task gone %v after the start, before the init's deadline could have fired", d)
	}
	t.Logf("task gone %v after the start (deadline %v after the init's start, then %v grace)",
		gone.Sub(t0), initDeadlineFor(timeout, grace).after, grace)

	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	poll("worker reports the task", 30*time.Second, func() bool { return strings.Contains(out.String(), "done ") })
	// The mini-worker exits by itself after its one task; SIGTERM stops it should it linger.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		t.Fatalf("worker did not exit: %q", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("worker exit status %d, want 0; output %q", code, out.String())
	}
	done := out.String()[strings.Index(out.String(), "done "):]
	if !strings.Contains(done, "TimedOut:true") || !strings.Contains(done, "Signal:SIGKILL") || !strings.HasSuffix(strings.TrimSpace(done), "<nil>") {
		t.Errorf("worker reported %q: want timed out, killed by SIGKILL, no error", done)
	}
	return ""
}

// TestInitDeadlineOutsideNamespace runs the init with a deadline as PID 2+ of a throw-away
// namespace (unshare), next to a decoy, so a regression to a bare kill(-1) stays inside it:
// at its deadline the init must end its SIGTERM-ignoring command (SIGKILL after the grace),
// exit with initDeadlineExit, and spare the decoy.
func TestInitDeadlineOutsideNamespace(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs root and util-linux unshare: %v", err)
		}
		t.Skip("needs root and unshare")
	}
	script := `
sleep 300 & D=$!
` + initEnv + `=run ` + deadlineEnv + `="200 100" "$BIN" "$FIX" ignoreterm >/dev/null
echo "init-exit $?"
if kill -0 $D 2>/dev/null; then echo decoy-alive; kill $D; else echo decoy-dead; fi
`
	cmd := exec.Command(unshare, "--pid", "--fork", "--kill-child", "/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), "BIN="+os.Args[0], "FIX="+fixtureBin(t), noRaceSleep)
	cmd.WaitDelay = 5 * time.Second
	done := make(chan struct{})
	var outb []byte
	go func() { outb, err = cmd.CombinedOutput(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // --kill-child takes the namespace with it; no-op once reaped
		<-done
	})
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("timed out")
	}
	if err != nil {
		t.Fatalf("%v: %q", err, outb)
	}
	if got := string(outb); !strings.Contains(got, "init-exit 124") || !strings.Contains(got, "decoy-alive") {
		t.Errorf("output %q: want the init to exit %d at its deadline and the decoy alive", got, initDeadlineExit)
	}
}

func TestParseInitDeadline(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    initDeadline
		wantErr bool
	}{
		{in: "1500 250", want: initDeadline{after: 1500 * time.Millisecond, grace: 250 * time.Millisecond}},
		{in: "1 0", want: initDeadline{after: time.Millisecond}},
		{in: "1099511627776 0", want: initDeadline{after: maxDeadlineMS * time.Millisecond}},
		{in: "1099511627777 0", wantErr: true},
		{in: "0 100", wantErr: true},
		{in: "-1 100", wantErr: true},
		{in: "100 -1", wantErr: true},
		{in: "0100 1", wantErr: true},
		{in: "+100 1", wantErr: true},
		{in: "100  1", wantErr: true},
		{in: "100 1 2", wantErr: true},
		{in: "100", wantErr: true},
		{in: "", wantErr: true},
		{in: "1s 1s", wantErr: true},
	} {
		got, err := parseInitDeadline(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseInitDeadline(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("round trip of %q: %q", tt.in, got.String())
		}
	}
	// What the supervisor sends, the init accepts, and it comes after the supervisor's SIGKILL.
	for _, tc := range [][2]time.Duration{{time.Nanosecond, 0}, {300 * time.Millisecond, 2 * time.Second}, {1<<63 - 1, 1<<63 - 1}} {
		d := initDeadlineFor(tc[0], tc[1])
		got, err := parseInitDeadline(d.String())
		if err != nil || got != d {
			t.Errorf("initDeadlineFor(%v, %v) = %+v: parsed back as %+v, %v", tc[0], tc[1], d, got, err)
		}
		if tc[0] < time.Hour && d.after < tc[0]+tc[1]+deadlineMargin-time.Millisecond {
			t.Errorf("initDeadlineFor(%v, %v) = %+v: not after timeout+grace+margin", tc[0], tc[1], d)
		}
	}
}

func TestParseInitStatusDeadline(t *testing.T) {
	st, err := parseInitStatus("exit -1 9 deadline\n")
	if err != nil || st != (initStatus{code: -1, signal: 9, deadline: true}) {
		t.Errorf("got %+v, %v", st, err)
	}
	for _, bad := range []string{"exit 0 0 late\n", "exit 0 0 deadline x\n", "exit 0 deadline\n"} {
		if st, err := parseInitStatus(bad); err == nil {
			t.Errorf("parseInitStatus(%q) = %+v, want an error", bad, st)
		}
	}
}

func TestParseNSpid(t *testing.T) {
	for _, tt := range []struct {
		status string
		want   []int
	}{
		{"Name:\tx\nNSpid:\t21465\t1\nNSsid:\t0\n", []int{21465, 1}},
		{"Name:\tinit\nNSpid:\t1\n", []int{1}},
		{"NSpid:\t5\t7\t1", []int{5, 7, 1}},
		{"Name:\told kernel\nPid:\t1\n", nil},
		{"NSpid:\t5\tx\n", nil},
	} {
		got := proctab.ParseNSpid(tt.status)
		if len(got) != len(tt.want) {
			t.Errorf("ParseNSpid(%q) = %v, want %v", tt.status, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ParseNSpid(%q) = %v, want %v", tt.status, got, tt.want)
			}
		}
	}
	// This test process is never PID 1 of a namespace.
	if isNamespaceInit() {
		t.Error("isNamespaceInit() is true outside a task namespace")
	}
}
