package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	t.Cleanup(l.Stop)
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
	all := map[string]lab.Truth{}
	slow := map[string]lab.Truth{}
	var slowList strings.Builder
	for _, tr := range l.Truth() {
		all[tr.Proxy.Addr()] = tr
		if tr.Kind == lab.KindSlow {
			slow[tr.Proxy.Addr()] = tr
			slowList.WriteString(tr.Proxy.String() + "\n")
		}
	}
	// The short timeout is used on the slow proxies alone: on a loaded machine under -race it
	// would fail live ones too.
	tests := []struct {
		name    string
		file    string
		truth   map[string]lab.Truth
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
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) != len(truth) {
				t.Fatalf("%d result lines for %d candidates", len(lines), len(truth))
			}
			for _, line := range lines {
				var r jsonResult
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("bad JSON line %q: %v", line, err)
				}
				p, err := proxy.Parse(r.Proxy)
				if err != nil {
					t.Fatalf("result proxy %q: %v", r.Proxy, err)
				}
				tr := truth[p.Addr()]
				wantClass, wantAlive := tr.Class, tr.Alive
				if tr.Delay > 0 && timeout <= tr.Delay {
					wantClass, wantAlive = lab.ClassTimeout, false
				}
				if r.Class != wantClass || (r.Class == "alive") != wantAlive {
					t.Errorf("%s (%s): class %s (%s), want %s", r.Proxy, tr.Kind, r.Class, r.Error, wantClass)
					continue
				}
				if !wantAlive {
					continue
				}
				if r.Anonymity != tr.Anonymity || r.ExitIP != tr.ExitIP || p.Scheme != tr.Scheme {
					t.Errorf("%s (%s): %s %s %s, want %s %s %s", r.Proxy, tr.Kind, p.Scheme, r.Anonymity, r.ExitIP,
						tr.Scheme, tr.Anonymity, tr.ExitIP)
				}
				if r.TotalMS <= 0 || r.ConnectMS <= 0 || r.ConnectMS > r.TotalMS {
					t.Errorf("%s: timings connect %v total %v", r.Proxy, r.ConnectMS, r.TotalMS)
				}
			}
		})
	}
}

// TestCheckCommandLabFlag runs the README's "nothing to install" command.
func TestCheckCommandLabFlag(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCheckCmd(t, context.Background(), "", "--lab", "-t", "3s")
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
		{name: "missing file", args: []string{"-f", filepath.Join(dir, "nope.txt"), "--judge", judge}, wantCode: ExitError},
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

// TestCheckCommandInterrupt cancels the command's context (what the first SIGINT does) while
// blackholes hold checks open with a long timeout: it must return promptly, with the live
// proxies checked so far written and the interruption reported.
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
	// The signal arrives after 3 s: the live proxies answer in milliseconds, the
	// blackholes would hold their checks for the whole 60 s timeout.
	timer := time.AfterFunc(3*time.Second, cancel)
	defer timer.Stop()
	start := time.Now()
	code, stdout, stderr := runCheckCmd(t, ctx, in.String(), "-f", "-", "--judge", l.JudgeURL(), "-t", "60s")
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("took %v after the interrupt", took)
	}
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, p := range live {
		if !strings.Contains(stdout, p+"\n") {
			t.Errorf("live %s not written:\n%s", p, stdout)
		}
	}
	if !strings.Contains(stderr, "interrupted: 5 of 8 proxies not checked") {
		t.Errorf("stderr lacks the interruption:\n%s", stderr)
	}
}
