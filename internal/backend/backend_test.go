package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// fakeChecker is external's test tool (it reports proxies on even ports live), built once.
func fakeChecker(t testing.TB) string {
	return testkit.BuildBinary(t, "./internal/check/external/testdata/fakechecker", testkit.NoRace())
}

func TestMain(m *testing.M) {
	// A supervisor re-executes this binary as the init of a task's PID namespace.
	if code, ok := supervise.MaybeInit(); ok {
		os.Exit(code)
	}
	testkit.Main(m, testkit.Subreaper()) // its supervisors make this process a subreaper
}

func startLab(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	l, err := lab.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return l
}

// stopBackend stops b, failing t on an error.
func stopBackend(t *testing.T, b *Backend) {
	t.Helper()
	if err := b.Stop(context.Background()); err != nil {
		t.Errorf("stop backend: %v", err)
	}
}

func outcome(r check.Result) lab.Outcome {
	return lab.Outcome{Proxy: r.Proxy, Class: string(r.Class), Err: r.Err, ExitIP: r.ExitIP, Anonymity: string(r.Anonymity)}
}

func requireTruth(t *testing.T, truth []lab.Truth, got []lab.Outcome, c lab.Conditions) {
	t.Helper()
	if s := lab.Compare(truth, got, c); !s.OK() {
		var b strings.Builder
		_ = s.Write(&b)
		t.Errorf("results differ from the lab's truth:\n%s", b.String())
	}
}

// TestBackendInProcess: Open asks the judge once, and both ways of checking give the truth, the
// stream with each proxy as given.
func TestBackendInProcess(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 3, SOCKS5: 2, Bare: 2, Refused: 2, Liar: 1})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, l.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Open(context.Background(), Config{Judge: check.JudgeConfig{URL: l.JudgeTLSURL(), CAFile: ca}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer stopBackend(t, b)
	if b.Name() != BackendInProcess {
		t.Errorf("Name() = %q", b.Name())
	}
	cond := lab.Conditions{Timeout: 10 * time.Second, TLSJudge: true}
	var all []lab.Outcome
	if err := b.CheckAll(context.Background(), l.Candidates(), func(r check.Result) { all = append(all, outcome(r)) }); err != nil {
		t.Fatal(err)
	}
	requireTruth(t, l.Truth(), all, cond)

	in := make(chan proxy.Proxy)
	go func() {
		defer close(in)
		for _, p := range l.Candidates() {
			in <- p
		}
	}()
	var streamed []lab.Outcome
	err = b.CheckStream(context.Background(), in, func(given proxy.Proxy, r check.Result) {
		if given.Addr() != r.Proxy.Addr() || given.Scheme != proxy.Unknown && given != r.Proxy {
			t.Errorf("result %v emitted for %v", r.Proxy, given)
		}
		streamed = append(streamed, outcome(r))
	})
	if err != nil {
		t.Fatal(err)
	}
	requireTruth(t, l.Truth(), streamed, cond)
}

// TestBackendExec: with --exec the tool runs once per chunk under a supervisor of the backend's
// own; what it says is all a result holds.
func TestBackendExec(t *testing.T) {
	t.Parallel()
	sizes := filepath.Join(t.TempDir(), "sizes")
	b, err := Open(context.Background(), Config{
		// sh, wc and grep: each run appends its chunk's size to sizes; even ports are live.
		Exec:  Exec{Template: `sh -c 'wc -l < "$1" >> "$3"; grep "[02468]$" "$1" > "$2"; exit 0' sh {in} {out} ` + sizes},
		Chunk: 4, Name: "backend-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stopBackend(t, b)
	if b.Name() != BackendExec {
		t.Errorf("Name() = %q", b.Name())
	}
	var ps []proxy.Proxy
	for port := 2000; port < 2010; port++ {
		ps = append(ps, proxy.Proxy{Scheme: proxy.HTTP, Host: "127.0.0.2", Port: uint16(port)})
	}
	alive := 0
	if err := b.CheckAll(context.Background(), ps, func(r check.Result) {
		if r.OK() != (r.Proxy.Port%2 == 0) {
			t.Errorf("%v: %s", r.Proxy, r.Class)
		}
		if r.OK() {
			alive++
		}
	}); err != nil {
		t.Fatal(err)
	}
	if runs, _ := os.ReadFile(sizes); alive != 5 || strings.Join(strings.Fields(string(runs)), " ") != "4 4 2" {
		t.Errorf("%d alive, runs %q; want 5 and chunks of 4", alive, runs)
	}
	stopBackend(t, b) // idempotent: the deferred one does nothing more
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cfg    Config
		config bool // an ErrConfig, else a runtime error
		want   string
	}{
		{"no judge", Config{}, true, "a judge URL is required"},
		{"bad judge", Config{Judge: check.JudgeConfig{URL: "ftp://127.0.0.1/"}}, true, "--judge"},
		{"CA not PEM", Config{Judge: check.JudgeConfig{URL: "http://127.0.0.1:1/", CAFile: notPEM}}, true, "no PEM certificate"},
		{"judge down", Config{Judge: check.JudgeConfig{URL: "http://127.0.0.1:1/"}, Timeout: 2 * time.Second}, false, "judge not usable"},
		{"no such program", Config{Exec: Exec{Template: "/nonexistent/tool -f {in}"}}, true, "--exec"},
		{"{judge} without a judge", Config{Exec: Exec{Template: fakeChecker(t) + " -f {in} --judge {judge}"}}, true, "{judge}"},
		{"unknown layer", Config{Exec: Exec{Template: fakeChecker(t) + " -f {in}", Disable: "nope"}}, true, "--disable-layers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := Open(context.Background(), tt.cfg)
			if err == nil {
				stopBackend(t, b)
				t.Fatal("Open succeeded")
			}
			if errors.Is(err, ErrConfig) != tt.config || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open = %v; want %q, ErrConfig %v", err, tt.want, tt.config)
			}
		})
	}
}

func TestExecValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e    Exec
		want string // "" = valid
	}{
		{Exec{}, ""},
		{Exec{Disable: "cgroup,pid_namespace"}, ""},
		{Exec{Template: fakeChecker(t) + " -f {in} -o {out}", PTY: true, Env: "HTTPS_PROXY, NO_PROXY"}, ""},
		{Exec{PTY: true}, "--exec-pty needs --exec"},
		{Exec{Env: "X"}, "--exec-env needs --exec"},
		{Exec{Template: fakeChecker(t) + " -f {in}", Env: "PROXYLINE_DATABASE"}, "never passed"},
		{Exec{Template: "nonexistent-tool-xyz -f {in}"}, "nonexistent-tool-xyz"},
		{Exec{Template: "mubeng -f ~/list"}, "unquoted ~"},
		{Exec{Disable: "cgroup,nope"}, "unknown supervision layer"},
	}
	for _, tt := range tests {
		err := tt.e.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: Validate() = %v, want %q", tt.e, err, tt.want)
		}
	}
	if got := (Exec{Env: " A, ,B "}).EnvNames(); len(got) != 2 || got[0] != "A" || got[1] != "B" {
		t.Errorf("EnvNames = %q", got)
	}
}

// TestJobs: a job carries its judge, CA certificates included, and the worker's checker for it
// gives the truth; what fails on this worker's own set-up is check.ErrSetup, bad options are not.
func TestJobs(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 2, SOCKS5: 1, Refused: 1})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, l.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := JobOptions(check.JudgeConfig{URL: l.JudgeTLSURL(), CAFile: ca, Status: 200}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if o.JudgeCAPEM == "" || o.JudgeCAPath != "" || JudgeOf(o).URL != l.JudgeTLSURL() {
		t.Errorf("job options %+v: want the CA's certificates, not its file", o)
	}
	full := check.JudgeConfig{URL: l.JudgeTLSURL(), CAPEM: string(l.CAPEM()), Status: 204, Keyword: "k", PostQuantum: true}
	if jo, err := JobOptions(full, time.Second); err != nil || JudgeOf(jo) != full || jo.Timeout != time.Second {
		t.Errorf("JobOptions(%+v) = %+v, %v: the judge does not come back whole", full, jo, err)
	}
	jobs, err := NewJobs(JobsConfig{Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	if jobs.Name() != BackendInProcess {
		t.Errorf("Name() = %q", jobs.Name())
	}
	c, err := jobs.NewChecker(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.CheckChunk(context.Background(), l.Candidates())
	if err != nil {
		t.Fatal(err)
	}
	var got []lab.Outcome
	for _, r := range rs {
		got = append(got, outcome(r))
	}
	requireTruth(t, l.Truth(), got, lab.Conditions{Timeout: 5 * time.Second, TLSJudge: true})

	for _, tt := range []struct {
		name  string
		o     queue.CheckOptions
		setup bool
	}{
		{"CA file not on this worker", queue.CheckOptions{Judge: l.JudgeTLSURL(), JudgeCAPath: "/nonexistent/ca.pem"}, true},
		{"judge down", queue.CheckOptions{Judge: "http://127.0.0.1:1/", Timeout: 2 * time.Second}, true},
		{"CA not PEM", queue.CheckOptions{Judge: l.JudgeTLSURL(), JudgeCAPEM: "hello"}, false},
	} {
		if _, err := jobs.NewChecker(context.Background(), tt.o); err == nil || errors.Is(err, check.ErrSetup) != tt.setup {
			t.Errorf("%s: NewChecker = %v, want a set-up failure: %v", tt.name, err, tt.setup)
		}
	}
	if _, err := JobOptions(check.JudgeConfig{URL: l.JudgeURL(), CAFile: "/nonexistent/ca.pem"}, 0); err == nil || !strings.Contains(err.Error(), "--judge-ca") {
		t.Errorf("JobOptions with a missing CA file = %v", err)
	}
}

// TestJobsExec: the external tool runs under the worker's supervisor, once per job's chunk.
func TestJobsExec(t *testing.T) {
	t.Parallel()
	sup, err := supervise.New(supervise.Config{Name: "backend-jobs-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sup.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	if _, err := NewJobs(JobsConfig{Exec: Exec{Template: fakeChecker(t) + " -f {in} -o {out}"}}); err == nil {
		t.Error("NewJobs with --exec and no supervisor: no error")
	}
	jobs, err := NewJobs(JobsConfig{Exec: Exec{Template: fakeChecker(t) + " -f {in} -o {out}"}, Runner: sup})
	if err != nil {
		t.Fatal(err)
	}
	if jobs.Name() != BackendExec {
		t.Errorf("Name() = %q", jobs.Name())
	}
	c, err := jobs.NewChecker(context.Background(), queue.CheckOptions{Judge: "http://127.0.0.2/"})
	if err != nil {
		t.Fatal(err)
	}
	ps := []proxy.Proxy{{Scheme: proxy.HTTP, Host: "127.0.0.2", Port: 8080}, {Scheme: proxy.SOCKS5, Host: "127.0.0.2", Port: 1081}}
	rs, err := c.CheckChunk(context.Background(), ps)
	if err != nil || len(rs) != 2 || !rs[0].OK() || rs[1].Class != check.Dead {
		t.Errorf("CheckChunk = %+v, %v", rs, err)
	}
}
