package run

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/internal/testdb"
)

// proc is a proxyline process under test: its stdout lines and its log.
type proc struct {
	cmd  *exec.Cmd
	out  chan string
	mu   sync.Mutex
	log  bytes.Buffer  // guarded by mu
	done chan struct{} // closed when it exited; err is then set
	err  error
}

// start starts the binary with args; it is SIGKILLed at the test's end if still running.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: make(chan string, 100), done: make(chan struct{})}
	cmd.Stderr = (*procLog)(p)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			p.out <- s.Text()
		}
		p.err = cmd.Wait()
		close(p.out)
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", args[0], p.logText())
		}
	})
	return p
}

type procLog proc

func (l *procLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.log.Write(b)
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// line waits for a stdout line matching re and returns its submatches.
func (p *proc) line(t *testing.T, re string, within time.Duration) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-p.out:
			if !ok {
				t.Fatalf("stdout ended before a line matching %q (exit: %v)", re, p.err)
			}
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timer.C:
			t.Fatalf("no stdout line matching %q in %s", re, within)
		}
	}
}

// logMatch polls the log for re and returns every match's submatches once there is one.
func (p *proc) logMatch(t *testing.T, re string, within time.Duration) [][]string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var ms [][]string
	poll(t, within, "log line "+re, func() bool {
		ms = rx.FindAllStringSubmatch(p.logText(), -1)
		return len(ms) > 0
	})
	return ms
}

// exit waits for the process to exit and returns its exit code.
func (p *proc) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("process did not exit within %s", within)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

// poll calls ok until it returns true, failing the test after within. Timeouts here are failure
// bounds, far above what a busy machine needs.
func poll(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cookieHolders returns the processes whose environment carries a task cookie of owner pid.
func cookieHolders(owner int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := proctab.Environ(pid)
		if err != nil {
			continue
		}
		for _, kv := range env {
			v, ok := strings.CutPrefix(kv, supervise.CookieEnv+"=")
			if !ok {
				continue
			}
			if c, err := supervise.ParseCookie(v); err == nil && c.OwnerPID == owner {
				out = append(out, pid)
			}
		}
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, err := proctab.Stat(pid)
	return err == nil && st.State != 'Z' && st.State != 'X'
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loopbackListen puts the console and the rotator on free ports.
const loopbackListen = "[console]\nlisten = \"127.0.0.1:0\"\n\n[rotate]\nlisten = \"127.0.0.1:0\"\n"

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestRunLabEndToEnd: `proxyline run --lab` with a worker child process: a pool with live
// proxies through the API, a request through the rotator, /metrics parsed; SIGTERM ends it with
// exit 0 and leaves nothing (no child, no process with its cookie, no lab directory).
func TestRunLabEndToEnd(t *testing.T) {
	cfg := writeConfig(t, loopbackListen)
	p := start(t, nil, "run", "--lab", "--lab-per-kind", "2", "--workers", "1", "--config", cfg)
	consoleURL := p.line(t, `^console: (\S+)$`, 2*time.Minute)[1]
	rotator := p.line(t, `^rotator: http://(\S+) `, time.Minute)[1]
	lab := p.logMatch(t, `msg="lab started" .*judge=(\S+) dir=(\S+)`, time.Minute)[0]
	judge, labDir := lab[1], lab[2]
	children := p.logMatch(t, `msg="worker process started" worker=1 pid=(\d+)`, time.Minute)
	child, _ := strconv.Atoi(children[0][1])

	var page struct {
		Proxies []struct{ Proxy, Class string } `json:"proxies"`
	}
	poll(t, 3*time.Minute, "live proxies in the API", func() bool {
		return getJSON(consoleURL+"api/v1/proxies?limit=5", &page) == nil && len(page.Proxies) > 0
	})
	if page.Proxies[0].Class != "alive" {
		t.Fatalf("API pool %+v: want alive proxies", page.Proxies)
	}

	// Through the rotator to the lab's judge: its answer names a lab proxy, not us.
	rurl, _ := url.Parse("http://" + rotator)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(rurl)}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var echo struct {
		RemoteIP string `json:"remote_ip"`
	}
	poll(t, 2*time.Minute, "a request through the rotator", func() bool {
		resp, err := client.Get(judge)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&echo) == nil
	})
	if echo.RemoteIP == "" || echo.RemoteIP == "127.0.0.1" {
		t.Fatalf("the judge saw %q: want a lab proxy's address", echo.RemoteIP)
	}

	// /metrics parses, and counts the workers' supervised process and the pool.
	fams := scrapeMetrics(t, consoleURL+"metrics")
	if f := fams["proxyline_supervised_processes"]; f == nil || f.Metric[0].GetGauge().GetValue() != 1 {
		t.Errorf("proxyline_supervised_processes: %v; want 1 (the worker child)", f)
	}
	if fams["proxyline_scrape_source_runs_total"] == nil {
		t.Error("/metrics has no proxyline_scrape_source_runs_total: the run's scrapes are not counted")
	}
	// The child's checks are counted by the parent as its scheduler settles them (the child
	// serves no metrics): alive ones among them, with the latency histogram.
	poll(t, time.Minute, "the worker child's checks in /metrics", func() bool {
		fams = scrapeMetrics(t, consoleURL+"metrics")
		alive := 0.0
		if f := fams["proxyline_checks_total"]; f != nil {
			for _, m := range f.Metric {
				for _, l := range m.Label {
					if l.GetName() == "outcome" && l.GetValue() == "alive" {
						alive += m.GetCounter().GetValue()
					}
				}
			}
		}
		return alive > 0 && fams["proxyline_check_duration_seconds"] != nil
	})

	owner := p.cmd.Process.Pid
	if len(cookieHolders(owner)) == 0 {
		t.Fatalf("no process carries the run's cookie while it runs (the child %d should)", child)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exit(t, 2*time.Minute); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(p.logText(), `msg="run stopped"`) {
		t.Error(`no "run stopped" in the log`)
	}
	poll(t, 10*time.Second, "the worker child gone", func() bool { return !alive(child) })
	if left := cookieHolders(owner); len(left) > 0 {
		t.Fatalf("processes with the run's cookie left: %v", left)
	}
	if _, err := os.Stat(labDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lab directory %s left behind: %v", labDir, err)
	}
}

// startLab starts `proxyline lab` with sources, and returns its directory once it serves.
func startLabProcess(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p := start(t, nil, "lab", "--dir", dir, "--sources", "3", "--http", "4", "--socks5", "4", "--http-auth", "2",
		"--refused", "3", "--blackhole", "2", "--liar", "2")
	p.logMatch(t, `msg="lab ready"`, 2*time.Minute)
	return dir
}

// labConfig is a run configuration against the lab in dir: its sources, judge and CA, checks
// that each proxy gets once (re-checks an hour away), no rotator.
func labConfig(t *testing.T, dir, database string, extra string) string {
	t.Helper()
	judge, err := os.ReadFile(filepath.Join(dir, "judge.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sources, err := os.ReadFile(filepath.Join(dir, "sources.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("[database]\nurl = %q\n\n[schedule]\nrecheck_interval = \"1h\"\ndead_backoff = \"1h\"\nchunk = 4\n\n"+
		"[check]\njudge = %q\njudge_ca = %q\ntimeout = \"3s\"\n\n[console]\nlisten = \"127.0.0.1:0\"\n\n[rotate]\nenabled = false\n\n%s\n",
		database, strings.Fields(string(judge))[0], filepath.Join(dir, "ca.pem"), extra)
	text += strings.ReplaceAll(string(sources), "[[source]]", "[[scrape.source]]")
	return writeConfig(t, text)
}

// historyCounts returns, per proxy (addr|scheme), its rows in the history.
func historyCounts(t *testing.T, database string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := queue.Open(ctx, queue.Config{Database: database, Access: queue.ReadOnly})
	if err != nil {
		return nil
	}
	defer st.Close()
	rows, err := st.DB().Query(ctx, `SELECT addr, scheme, count(*) FROM proxyline_check GROUP BY addr, scheme`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var a, s string
		var n int
		if err := rows.Scan(&a, &s, &n); err != nil {
			t.Fatal(err)
		}
		out[a+"|"+s] = n
	}
	return out
}

// labCandidates is how many candidates the lab of startLabProcess lists.
func labCandidates(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "candidates.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return len(strings.Fields(string(b)))
}

// TestRunKillRestart: SIGKILL in the middle of the first round, with a worker child; the child
// dies with it; a restart on the same database checks every proxy exactly once in all (no
// duplicate in the history) and resumes the schedule (nothing re-checked before its time). On
// the embedded SQLite file and on PostgreSQL (`[database] url = "postgres://..."`, a fresh
// schema of the lab's database "test" at 127.0.0.1:5432; skipped without it, failed in CI).
func TestRunKillRestart(t *testing.T) {
	for _, engine := range testdb.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testRunKillRestart(t, testdb.Database(t, engine))
		})
	}
}

func testRunKillRestart(t *testing.T, database string) {
	labDir := startLabProcess(t)
	want := labCandidates(t, labDir)
	cfg := labConfig(t, labDir, database, "")

	p := start(t, nil, "run", "--config", cfg, "--workers", "1")
	p.line(t, `^console: `, 2*time.Minute)
	child, _ := strconv.Atoi(p.logMatch(t, `msg="worker process started" worker=1 pid=(\d+)`, time.Minute)[0][1])
	poll(t, 3*time.Minute, "a first result", func() bool { return len(historyCounts(t, database)) > 0 })
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	p.exit(t, time.Minute)
	poll(t, 30*time.Second, "the worker child killed with its parent", func() bool { return !alive(child) })

	p2 := start(t, nil, "run", "--config", cfg, "--workers", "1")
	p2.line(t, `^console: `, 2*time.Minute)
	var got map[string]int
	poll(t, 4*time.Minute, "every candidate checked", func() bool {
		got = historyCounts(t, database)
		return len(got) >= want
	})
	// Every result settled into the schedule: nothing in flight, nothing due again soon.
	poll(t, time.Minute, "the schedule settled", func() bool { return settled(t, database) })
	got = historyCounts(t, database)
	if len(got) != want {
		t.Fatalf("%d proxies in the history, want the lab's %d", len(got), want)
	}
	for k, n := range got {
		if n != 1 {
			t.Errorf("proxy %s checked %d times, want once (schedule not resumed, or a job ran twice)", k, n)
		}
	}
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p2.exit(t, 2*time.Minute); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
}

// settled reports whether every scheduled proxy has its result (no job in flight) and its next
// check at least half an hour away: the schedule resumed instead of starting over.
func settled(t *testing.T, database string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := queue.Open(ctx, queue.Config{Database: database, Access: queue.ReadOnly})
	if err != nil {
		return false
	}
	defer st.Close()
	rows, err := st.DB().Query(ctx, `SELECT count(*) FROM proxyline_schedule WHERE job_id <> 0 OR next_check_at < ?`,
		time.Now().Add(30*time.Minute).UnixMilli())
	if err != nil {
		return false
	}
	defer rows.Close()
	var n int
	if !rows.Next() || rows.Scan(&n) != nil {
		return false
	}
	return n == 0
}
