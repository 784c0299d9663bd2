package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/judge"
	"github.com/proxyline/proxyline/internal/testkit"
)

// startServeCmd runs a long-running subcommand in-process and waits for its ready line. Cancel
// the returned context to stop it; the channel yields its exit code.
func startServeCmd(t *testing.T, ready string, args ...string) (stdout, stderr *testkit.Buffer, stop func() int) {
	t.Helper()
	stdout, stderr = &testkit.Buffer{}, &testkit.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	env := &Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr,
		Getenv: func(string) string { return "" }, Force: make(chan struct{})}
	done := make(chan int, 1)
	go func() { done <- run(ctx, env, args) }()
	stopped := false
	stop = func() int {
		if stopped {
			return -1
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatalf("%v did not stop; stderr:\n%s", args, stderr)
			return -1
		}
	}
	t.Cleanup(func() { stop() })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), ready) {
		select {
		case code := <-done:
			stopped = true
			t.Fatalf("%v exited %d before %q; stderr:\n%s", args, code, ready, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: no %q; stderr:\n%s", args, ready, stderr)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	return stdout, stderr, stop
}

// fetchThrough fetches the judge through proxyURL and returns the page.
func fetchThrough(t *testing.T, proxyURL, judgeURL string) judge.Response {
	t.Helper()
	pu, err := url.Parse(proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(judgeURL + "?t=cli")
	if err != nil {
		t.Fatalf("GET %s through %s: %v", judgeURL, proxyURL, err)
	}
	defer resp.Body.Close()
	var page judge.Response
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	return page
}

func TestLabCommand(t *testing.T) {
	t.Parallel()
	t.Run("dir", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "lab")
		_, stderr, stop := startServeCmd(t, "lab ready", "lab", "--http", "2", "--socks5", "1", "--slow-delay", "2s", "--dir", dir)
		if !regexp.MustCompile(`msg="lab ready" judge=http://127\.0\.0\.2:\d+/ judge_tls=https://127\.0\.0\.2:\d+/ candidates=3 .*http=2 socks5=1`).MatchString(stderr.String()) {
			t.Fatalf("ready line: %s", stderr)
		}
		cands, err := os.ReadFile(filepath.Join(dir, "candidates.txt"))
		if err != nil {
			t.Fatal(err)
		}
		judges, err := os.ReadFile(filepath.Join(dir, "judge.txt"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Fields(string(cands))
		if len(lines) != 3 {
			t.Fatalf("candidates.txt: %q", cands)
		}
		if page := fetchThrough(t, lines[0], strings.Fields(string(judges))[0]); page.Token != "cli" {
			t.Fatalf("page %+v", page)
		}
		if code := stop(); code != ExitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		if !strings.Contains(stderr.String(), "lab stopped") {
			t.Fatalf("no stop line: %s", stderr)
		}
	})
	t.Run("stdout", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, stop := startServeCmd(t, "lab ready", "lab", "--refused", "2", "--bare", "2")
		if code := stop(); code != ExitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		lines := strings.Fields(stdout.String())
		if len(lines) != 4 || strings.Count(stdout.String(), "://") != 2 {
			t.Fatalf("stdout %q, want 2 refused with scheme and 2 bare", stdout)
		}
	})
	for _, args := range [][]string{{"lab", "--http", "-1"}, {"lab", "--slow-delay", "-1s"}, {"lab", "extra"}, {"lab", "--nope"}} {
		env := &Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
		if code := run(context.Background(), env, args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}

func TestJudgeCommand(t *testing.T) {
	t.Parallel()
	_, stderr, stop := startServeCmd(t, "judge ready", "judge", "--listen", "127.0.0.1:0")
	m := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("ready line: %s", stderr)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := client.Get(m[1] + "a?t=x")
	if err != nil {
		t.Fatal(err)
	}
	var page judge.Response
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if err != nil || page.Token != "x" || page.URI != "/a?t=x" {
		t.Fatalf("page %+v, %v", page, err)
	}
	if code := stop(); code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	if _, err := client.Get(m[1]); err == nil {
		t.Fatal("judge still answers after stop")
	}
	for _, args := range [][]string{
		{"judge", "--tls-cert", "c.pem"},
		{"judge", "--listen", "nope"},
		{"judge", "--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent/c", "--tls-key", "/nonexistent/k"},
	} {
		env := &Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
		if code := run(context.Background(), env, args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}
