package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

// runCheckCmd runs "proxyline check args..." in-process and returns exit code, stdout, stderr.
func runCheckCmd(t *testing.T, ctx context.Context, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr}
	code := run(ctx, env, append([]string{"check"}, args...))
	return code, stdout.String(), stderr.String()
}

// startCheckLab starts a lab writing its files to a temporary directory.
func startCheckLab(t *testing.T, cfg lab.Config) (*lab.Lab, string) {
	t.Helper()
	cfg.Dir = t.TempDir()
	l, err := lab.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop lab: %v", err)
		}
	})
	return l, cfg.Dir
}

type jsonResult struct {
	Proxy     string  `json:"proxy"`
	Class     string  `json:"class"`
	Error     string  `json:"error"`
	ExitIP    string  `json:"exit_ip"`
	Anonymity string  `json:"anonymity"`
	ConnectMS float64 `json:"connect_ms"`
	TotalMS   float64 `json:"total_ms"`
}

// TestCheckCommandLab runs the command on a file of every kind of lab proxy, with the slow ones'
// delay inside and outside the timeout, and compares each JSON line with the truth: liars
// mismatch, transparent/anonymous/elite as they are, SOCKS4/4a/5 with and without auth alive,
// bare host:port probed to the right scheme, blackholes timeout, refused refused, slow ones alive
// or timeout by -t; no false positive or negative.
func TestCheckCommandLab(t *testing.T) {
	t.Parallel()
	const n = 3
	l, dir := startCheckLab(t, lab.Config{
		HTTP: n, HTTPAuth: n, HTTPS: n, SOCKS4: n, SOCKS4A: n, SOCKS5: n, SOCKS5Auth: n,
		Transparent: n, Anonymous: n, Refused: n, Blackhole: n, Slow: n, Liar: n, Alter: n, Bare: 2 * n,
		SlowDelay: time.Second,
	})
	all := l.Truth()
	var slow []lab.Truth
	var slowList strings.Builder
	for _, tr := range all {
		if tr.Kind == lab.KindSlow {
			slow = append(slow, tr)
			slowList.WriteString(tr.Proxy.String() + "\n")
		}
	}
	// The short timeout is used on the slow proxies alone: on a loaded machine under -race it
	// would fail live ones too.
	tests := []struct {
		name    string
		file    string
		truth   []lab.Truth
		timeout time.Duration
	}{
		{"all kinds", filepath.Join(dir, "candidates.txt"), all, 4 * time.Second},
		{"slow ones time out", "-", slow, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			truth, timeout := tt.truth, tt.timeout
			out := filepath.Join(t.TempDir(), "out.jsonl")
			code, stdout, stderr := runCheckCmd(t, context.Background(), slowList.String(),
				"-f", tt.file, "--judge", l.JudgeURL(),
				"--judge-ca", filepath.Join(dir, "ca.pem"), "-t", timeout.String(), "-c", "50",
				"--format", "jsonl", "--all", "-o", out)
			wantCode := ExitOK
			if tt.file == "-" {
				wantCode = ExitFailure // no slow proxy answers in time
			}
			if code != wantCode {
				t.Fatalf("exit %d, want %d, stderr:\n%s", code, wantCode, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout not empty with -o: %q", stdout)
			}
			if !strings.Contains(stderr, fmt.Sprintf("checked %d of %d", len(truth), len(truth))) {
				t.Errorf("no summary line on stderr:\n%s", stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			outcomes, err := lab.ReadOutcomes(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			requireTruth(t, lab.Compare(truth, outcomes, lab.Conditions{Timeout: timeout}))
			for line := range strings.Lines(string(b)) {
				var r jsonResult
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("bad JSON line %q: %v", line, err)
				}
				if r.Class == "alive" && (r.TotalMS <= 0 || r.ConnectMS <= 0 || r.ConnectMS > r.TotalMS) {
					t.Errorf("%s: timings connect %v total %v", r.Proxy, r.ConnectMS, r.TotalMS)
				}
			}
		})
	}
}

// requireTruth fails the test, listing every miss, unless the score is perfect.
func requireTruth(t *testing.T, s lab.Score) {
	t.Helper()
	if s.OK() {
		return
	}
	var b strings.Builder
	_ = s.Write(&b)
	t.Errorf("results differ from the lab's truth:\n%s", b.String())
}

// TestCheckCommandLabFlag runs the README's "nothing to install" command.
func TestCheckCommandLabFlag(t *testing.T) {
	t.Parallel()
	// -t 15s: at load 40 under -race live proxies' checks took more than 3 s and counted as
	// timeouts (41 false negatives); a longer -t costs only the blackholes' wait, in parallel.
	code, stdout, stderr := runCheckCmd(t, context.Background(), "", "--lab", "-t", "15s")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "0 false positives, 0 false negatives, 0 other errors, 0 not checked") {
		t.Errorf("lab summary not clean:\n%s", stderr)
	}
	live := strings.Count(stdout, "\n")
	if live == 0 {
		t.Errorf("no live proxy on stdout")
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if _, err := proxy.Parse(line); err != nil || !strings.Contains(line, "://") {
			t.Errorf("text output line %q is not a proxy URL (%v)", line, err)
		}
	}
}

// TestCheckCommandInput covers input handling and exit codes: bad lines are reported with
// file:line and the good ones still checked; an input with no valid line is a usage error;
// stdin is read only with -f -; no live proxy is exit 1; an unusable judge exit 3.
func TestCheckCommandInput(t *testing.T) {
	t.Parallel()
	l, dir := startCheckLab(t, lab.Config{HTTP: 2, SOCKS5: 1, Refused: 2})
	var live, dead []string
	for _, tr := range l.Truth() {
		if tr.Alive {
			live = append(live, tr.Proxy.String())
		} else {
			dead = append(dead, tr.Proxy.String())
		}
	}
	write := func(name, content string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mixed := write("mixed.txt", "# comment\n"+live[0]+"\nnot a proxy\n"+dead[0]+"\n127.0.0.1:99999\n"+live[1]+"\n")
	bad := write("bad.txt", "nope\nalso nope\n")
	deadOnly := write("dead.txt", strings.Join(dead, "\n")+"\n")
	ca := filepath.Join(dir, "ca.pem")
	judge := l.JudgeURL()
	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantCode   int
		wantOut    []string // lines that must be on stdout
		wantErr    []string // text that must be on stderr
		wantNotOut []string
	}{
		{name: "bad lines reported, good checked", args: []string{"-f", mixed, "--judge", judge},
			wantCode: ExitOK, wantOut: live[:2], wantNotOut: dead[:1],
			wantErr: []string{mixed + ":3:", mixed + ":5:", "checked 3 of 3"}},
		{name: "no valid line", args: []string{"-f", bad, "--judge", judge}, wantCode: ExitUsage,
			wantErr: []string{bad + ":1:", bad + ":2:", "no valid proxy"}},
		{name: "stdin", stdin: live[0] + "\n", args: []string{"-f", "-", "--judge", judge}, wantCode: ExitOK, wantOut: live[:1]},
		{name: "none alive", args: []string{"-f", deadOnly, "--judge", judge, "--format", "csv", "--all"}, wantCode: ExitFailure,
			wantOut: []string{"proxy,class,error,exit_ip,anonymity,connect_ms,total_ms,checked_at"}, wantErr: []string{"refused 2"}},
		{name: "judge down", args: []string{"-f", mixed, "--judge", "http://127.0.0.1:1/"}, wantCode: ExitError, wantErr: []string{"judge not usable"}},
		{name: "judge CA not PEM", args: []string{"-f", mixed, "--judge", judge, "--judge-ca", bad}, wantCode: ExitUsage, wantErr: []string{"no PEM"}},
		{name: "tls judge with CA", args: []string{"-f", mixed, "--judge", l.JudgeTLSURL(), "--judge-ca", ca}, wantCode: ExitOK, wantOut: live[:2]},
		{name: "tls judge without CA", args: []string{"-f", mixed, "--judge", l.JudgeTLSURL()}, wantCode: ExitError, wantErr: []string{"certificate"}},
		{name: "no -f", args: []string{"--judge", judge}, wantCode: ExitUsage, wantErr: []string{"-f FILE"}},
		{name: "no judge", args: []string{"-f", mixed}, wantCode: ExitUsage, wantErr: []string{"--judge URL is required"}},
		{name: "all with text", args: []string{"-f", mixed, "--judge", judge, "--all"}, wantCode: ExitUsage, wantErr: []string{"--all needs"}},
		{name: "bad format", args: []string{"-f", mixed, "--judge", judge, "--format", "xml"}, wantCode: ExitUsage},
		{name: "bad concurrency", args: []string{"-f", mixed, "--judge", judge, "-c", "0"}, wantCode: ExitUsage},
		{name: "missing file", args: []string{"-f", filepath.Join(dir, "nope.txt"), "--judge", judge}, wantCode: ExitUsage, wantErr: []string{"does not exist"}},
		{name: "help", args: []string{"--help"}, wantCode: ExitOK, wantErr: []string{"-judge-keyword", "Exit status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCheckCmd(t, context.Background(), tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr)
			}
			lines := map[string]bool{}
			for _, l := range strings.Split(stdout, "\n") {
				lines[l] = true
			}
			for _, w := range tt.wantOut {
				if !lines[w] {
					t.Errorf("stdout lacks line %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.wantNotOut {
				if lines[w] {
					t.Errorf("stdout has line %q", w)
				}
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// lineWatcher is a log destination that calls fn with each complete line.
type lineWatcher struct {
	mu  sync.Mutex
	buf []byte
	fn  func(line string)
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.fn(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// TestCheckCommandInterrupt cancels the command's context (what the first SIGINT does) once the
// live proxies are checked, while blackholes hold the other checks open with a long timeout: it
// must return promptly, with the live proxies written and the interruption reported.
func TestCheckCommandInterrupt(t *testing.T) {
	t.Parallel()
	l, _ := startCheckLab(t, lab.Config{HTTP: 3, Blackhole: 5})
	var in strings.Builder
	var live []string
	for _, tr := range l.Truth() {
		in.WriteString(tr.Proxy.String() + "\n")
		if tr.Alive {
			live = append(live, tr.Proxy.String())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alive := 0
	logs := &lineWatcher{fn: func(line string) {
		if strings.Contains(line, "msg=checked") && strings.Contains(line, "class=alive") {
			if alive++; alive == len(live) {
				cancel() // the interrupt, while the blackholes hang
			}
		}
	}}
	var stdout, stderr bytes.Buffer
	env := &Env{Stdin: strings.NewReader(in.String()), Stdout: &stdout, Stderr: &stderr,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	start := time.Now()
	code := run(ctx, env, []string{"check", "-f", "-", "--judge", l.JudgeURL(), "-t", "60s"})
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("took %v: the interrupt did not end the blackhole checks", took)
	}
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	for _, p := range live {
		if !strings.Contains(stdout.String(), p+"\n") {
			t.Errorf("live %s not written:\n%s", p, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "interrupted: 5 of 8 proxies not checked") {
		t.Errorf("stderr lacks the interruption:\n%s", stderr.String())
	}
}

// TestCheckHelperProcess is not a test: it is the proxyline process that
// TestCheckCommandSIGINT starts (this test binary re-executed), running Main with real signal
// handling.
func TestCheckHelperProcess(t *testing.T) {
	if os.Getenv("PROXYLINE_CHECK_HELPER") != "1" {
		t.Skip("helper process for TestCheckCommandSIGINT")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(Main(args, os.Stdin, os.Stdout, os.Stderr))
}

// TestCheckCommandSIGINT sends a real SIGINT to a real proxyline check process once its live
// proxies are checked, while blackholes hold the other checks: it must exit 0 promptly, with the
// live proxies written and the interruption reported, and leave no process behind.
func TestCheckCommandSIGINT(t *testing.T) {
	t.Parallel()
	l, _ := startCheckLab(t, lab.Config{HTTP: 3, Blackhole: 5})
	var in strings.Builder
	var live []string
	for _, tr := range l.Truth() {
		in.WriteString(tr.Proxy.String() + "\n")
		if tr.Alive {
			live = append(live, tr.Proxy.String())
		}
	}
	file := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(file, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckHelperProcess$", "--",
		"check", "-f", file, "--judge", l.JudgeURL(), "-t", "60s")
	cmd.Env = append(os.Environ(), "PROXYLINE_CHECK_HELPER=1", "PROXYLINE_LOG_LEVEL=debug")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	var errText strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		alive := 0
		for sc.Scan() {
			line := sc.Text()
			errText.WriteString(line + "\n")
			if strings.Contains(line, "msg=checked") && strings.Contains(line, "class=alive") {
				if alive++; alive == len(live) {
					_ = cmd.Process.Signal(syscall.SIGINT) // by PID; Wait reports if it is gone
				}
			}
		}
		waited <- cmd.Wait()
	}()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit: %v; stderr:\n%s", err, errText.String())
		}
	case <-time.After(45 * time.Second):
		_ = cmd.Process.Kill()
		<-waited
		t.Fatalf("no exit 45 s after start; stderr:\n%s", errText.String())
	}
	for _, p := range live {
		if !strings.Contains(stdout.String(), p+"\n") {
			t.Errorf("live %s not written:\n%s", p, stdout.String())
		}
	}
	if !strings.Contains(errText.String(), "interrupted: 5 of 8 proxies not checked") {
		t.Errorf("stderr lacks the interruption:\n%s", errText.String())
	}
}
