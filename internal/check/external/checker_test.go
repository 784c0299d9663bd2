package external

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/proxy"
)

func mustParse(t testing.TB, s string) proxy.Proxy {
	t.Helper()
	p, err := proxy.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testChunk has live proxies (even port, for fakechecker) and dead ones, with and without a
// scheme and credentials. Loopback only; nothing connects to them anyway.
func testChunk(t testing.TB) (chunk, live []proxy.Proxy) {
	for _, s := range []string{
		"http://127.0.0.2:8080", "http://127.0.0.2:8081", "socks5://u:p%20w@127.0.0.3:1080",
		"socks4://127.0.0.3:1081", "127.0.0.4:3128", "127.0.0.4:3129", "https://[::1]:8444",
	} {
		chunk = append(chunk, mustParse(t, s))
	}
	return chunk, []proxy.Proxy{chunk[0], chunk[2], chunk[4], chunk[6]}
}

func TestCheckChunk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		template string // {fake} is the fixture, {mark} a file path unique to the test
		pty      bool
		deadline time.Duration
		want     func(chunk, live []proxy.Proxy) []proxy.Proxy // nil: want an error
		err      error
		errText  string
		logText  string
	}{
		{name: "out file", template: "{fake} -f {in} --check -o {out} -t {timeout} -pids {mark}",
			want: func(_, live []proxy.Proxy) []proxy.Proxy { return live }},
		{name: "stdout", template: "{fake} -f {in} -mode stdout -pids {mark}",
			want: func(_, live []proxy.Proxy) []proxy.Proxy { return live }},
		{name: "stdin is dev null", template: "{fake} -f {in} -o {out} -mode stdin -pids {mark}",
			want: func(_, live []proxy.Proxy) []proxy.Proxy { return live }},
		{name: "pty", template: "{fake} -f {in} -mode tty -pids {mark}", pty: true,
			want: func(_, live []proxy.Proxy) []proxy.Proxy { return live }},
		{name: "no terminal", template: "{fake} -f {in} -mode tty -pids {mark}",
			err: ErrFailed, errText: "stdin is not a terminal"},
		{name: "no output file", template: "{fake} -f {in} -o {out} -mode none -pids {mark}",
			want: func(_, _ []proxy.Proxy) []proxy.Proxy { return nil }},
		{name: "extra and probed", template: "{fake} -f {in} -o {out} -mode extra -pids {mark}",
			want: func(chunk, live []proxy.Proxy) []proxy.Proxy {
				probed4, probed5 := chunk[4], chunk[5]
				probed4.Scheme, probed5.Scheme = proxy.SOCKS5, proxy.SOCKS5
				return []proxy.Proxy{live[0], live[1], probed4, live[3], probed5}
			},
			logText: "not in its chunk"},
		{name: "fails", template: "{fake} -f {in} -o {out} -mode fail -pids {mark}",
			err: ErrFailed, errText: `exit status 3: "fakechecker: something broke"`},
		{name: "hangs", template: "{fake} -f {in} -o {out} -mode hang -pids {mark}", deadline: time.Second,
			err: ErrDeadline},
		{name: "hangs on a pty", template: "{fake} -f {in} -o {out} -mode hang -pids {mark}", deadline: time.Second, pty: true,
			err: ErrDeadline},
		{name: "leaves a child", template: "{fake} -f {in} -o {out} -mode escape -pids {mark}",
			want: func(_, live []proxy.Proxy) []proxy.Proxy { return live }},
		{name: "no such program", template: "{mark}/nonexistent -f {in}", err: ErrSetup, errText: "nonexistent"},
		{name: "flooded out file", template: "{fake} -f {in} -o {out} -mode flood -n 2000000",
			err: ErrFailed, errText: "{out} has more than 1000 lines that are not live proxies of its chunk of 7; stopped reading it"},
		{name: "flooded stdout", template: "{fake} -f {in} -mode flood -n 2000000",
			err: ErrFailed, errText: "stdout has more than 1000 lines that are not live proxies of its chunk of 7; stopped reading it"},
		{name: "some junk", template: "{fake} -f {in} -mode flood -n 1000",
			want: func(_, _ []proxy.Proxy) []proxy.Proxy { return nil }, logText: "count=1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			mark := filepath.Join(t.TempDir(), "mark")
			var logs syncBuffer
			c := &Checker{
				Template: strings.NewReplacer("{fake}", fakeChecker(t), "{mark}", mark).Replace(tt.template),
				Timeout:  2 * time.Second,
				Deadline: tt.deadline,
				PTY:      tt.pty,
				TempDir:  tmp,
				Runner:   runner,
				Log:      slog.New(slog.NewTextHandler(&logs, nil)),
			}
			chunk, live := testChunk(t)
			start := time.Now()
			got, err := c.CheckChunk(context.Background(), chunk)
			elapsed := time.Since(start)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("CheckChunk: %v", err)
				}
				if want := tt.want(chunk, live); !reflect.DeepEqual(got, want) {
					t.Fatalf("live = %v, want %v", got, want)
				}
			} else {
				if err == nil {
					t.Fatalf("CheckChunk = %v, want an error", got)
				}
				if tt.err != nil && !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				if !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("error %q does not say %q", err, tt.errText)
				}
			}
			if !strings.Contains(logs.String(), tt.logText) {
				t.Fatalf("log does not say %q:\n%s", tt.logText, logs.String())
			}
			if tt.deadline > 0 && elapsed > tt.deadline+5*time.Second {
				t.Errorf("took %v with a deadline of %v", elapsed, tt.deadline)
			}
			// Every process of the run is gone, and so is its directory.
			waitNoProcesses(t, mark)
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("run directory left behind: %v", left)
			}
		})
	}
}

func TestCheckChunkCancel(t *testing.T) {
	t.Parallel()
	mark := filepath.Join(t.TempDir(), "mark")
	tmp := t.TempDir()
	c := &Checker{Template: fakeChecker(t) + " -f {in} -mode hang -pids " + mark, TempDir: tmp, Runner: runner}
	chunk, _ := testChunk(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.CheckChunk(ctx, chunk)
		done <- err
	}()
	// Cancel once the tool runs: its pid file appears.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(mark); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tool never started")
		}
		time.Sleep(5 * time.Millisecond) // polling interval, bounded by the deadline
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("CheckChunk after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("CheckChunk did not return after cancel")
	}
	waitNoProcesses(t, mark)
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("run directory left behind: %v", left)
	}
}

func TestCheckChunkPlaceholders(t *testing.T) {
	t.Parallel()
	mark := filepath.Join(t.TempDir(), "args")
	c := &Checker{
		Template:    fakeChecker(t) + ` -mode args -pids ` + mark + ` -f {in} -o {out} -t {timeout} 's={timeout_s}' 'ms={timeout_ms}' "c {concurrency}" x{judge}y '{"json":1}'`,
		Timeout:     1500 * time.Millisecond,
		Concurrency: 7,
		Judge:       "http://127.0.0.1:9/judge",
		TempDir:     t.TempDir(),
		Runner:      runner,
	}
	chunk, live := testChunk(t)
	got, err := c.CheckChunk(context.Background(), chunk)
	if err != nil || !reflect.DeepEqual(got, live) {
		t.Fatalf("CheckChunk = %v, %v", got, err)
	}
	b, err := os.ReadFile(mark)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	want := []string{"-mode", "args", "-pids", mark, "-f", "IN", "-o", "OUT", "-t", "1.5s", "s=2", "ms=1500", "c 7", "xhttp://127.0.0.1:9/judgey", `{"json":1}`}
	if len(args) != len(want) {
		t.Fatalf("args %q, want %q", args, want)
	}
	for i := range want {
		switch want[i] {
		case "IN", "OUT":
			if !filepath.IsAbs(args[i]) || !strings.HasPrefix(filepath.Base(filepath.Dir(args[i])), supervise.TaskDirPrefix) {
				t.Errorf("arg %d = %q, want a file in the run directory", i, args[i])
			}
		default:
			if args[i] != want[i] {
				t.Errorf("arg %d = %q, want %q", i, args[i], want[i])
			}
		}
	}
}

func TestCheckerValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    Checker
		want string
	}{
		{Checker{Template: "mubeng -f {in}"}, "no runner"},
		{Checker{Template: "mubeng -f {in} -j {judge}", Runner: runner}, "no judge"},
		{Checker{Template: "mubeng -f {input}", Runner: runner}, "unknown placeholder {input}"},
		{Checker{Template: "", Runner: runner}, "empty"},
		{Checker{Template: "mubeng", Runner: runner, Timeout: -1}, "negative"},
		{Checker{Template: "mubeng", Runner: runner, Concurrency: -1}, "negative"},
	}
	for _, tt := range tests {
		err := tt.c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.c, err, tt.want)
		}
		if _, err := tt.c.CheckChunk(context.Background(), []proxy.Proxy{{Host: "127.0.0.1", Port: 1}}); err == nil {
			t.Errorf("CheckChunk with %+v ran", tt.c)
		}
	}
	ok := Checker{Template: "mubeng -f {in} -o {out}", Runner: runner}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if live, err := ok.CheckChunk(context.Background(), nil); err != nil || live != nil {
		t.Fatalf("empty chunk: %v, %v", live, err)
	}
}

// TestNoFDLeak runs alone (not parallel) and checks that runs, failed and killed ones included,
// leave no file descriptor open in the worker.
func TestNoFDLeak(t *testing.T) {
	fds := func() int {
		e, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(e)
	}
	chunk, _ := testChunk(t)
	run := func(mode string, deadline time.Duration) {
		c := &Checker{Template: fakeChecker(t) + " -f {in} -o {out} -mode " + mode, Deadline: deadline, TempDir: t.TempDir(), Runner: runner}
		_, _ = c.CheckChunk(context.Background(), chunk)
	}
	run("live", 0) // warm up: lazily opened runtime and library fds
	before := fds()
	for range 3 {
		run("live", 0)
		run("fail", 0)
		run("hang", 500*time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fds() > before {
		if time.Now().After(deadline) {
			t.Fatalf("fds: %d before, %d after", before, fds())
		}
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// TestWarningsHideCredentials: the warnings about a tool's bad or foreign lines say where and
// why, never the text of a line, which may hold a proxy's password.
func TestWarningsHideCredentials(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	out := filepath.Join(t.TempDir(), "report")
	if err := os.WriteFile(out, []byte("http://u:pw-secret@127.0.0.99:1\nnot:a:proxy:pw-secret2:x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Checker{Template: "cp " + out + " {out}", Runner: runner, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	chunk, _ := testChunk(t)
	if _, err := c.CheckChunk(context.Background(), chunk); err != nil {
		t.Fatal(err)
	}
	if l := logs.String(); strings.Contains(l, "secret") || !strings.Contains(l, "127.0.0.99:1") || !strings.Contains(l, "{out}:2: ") {
		t.Errorf("warnings:\n%s", l)
	}
}
