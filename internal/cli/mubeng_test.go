package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/lab"
)

// The real-mubeng test runs its second half in this test binary re-executed inside private
// network and mount namespaces; these variables tell that process what to do.
const (
	mubengNSEnv     = "CLI_TEST_MUBENG_NS"     // "1" inside the namespaces
	mubengPathEnv   = "CLI_TEST_MUBENG_PATH"   // the mubeng binary
	mubengResultEnv = "CLI_TEST_MUBENG_RESULT" // where the inner run writes its summary
)

// execExample is one `--exec` example of the documentation.
type execExample struct {
	Where    string // file:line
	Command  string // check or worker
	Template string
	PTY      bool
}

// docExecExamples finds every `proxyline check|worker ... --exec '...'` in README.md and
// docs/*.md.
func docExecExamples(t *testing.T) []execExample {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	re := regexp.MustCompile("proxyline (check|worker) [^`\n]*?--exec '([^']+)'")
	var out []execExample
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				out = append(out, execExample{Where: fmt.Sprintf("%s:%d", filepath.Base(f), i+1), Command: m[1], Template: m[2],
					PTY: strings.Contains(m[0], "--exec-pty")})
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no --exec example found in the documentation: the test could not fail")
	}
	return out
}

// findMubeng finds the peer build of mubeng: $CLI_TEST_MUBENG_PATH, else shared/peers/mubeng
// next to the project (../shared/peers from the main checkout, also found from a worktree
// deeper down), else mubeng on PATH. Missing, the test fails in CI and skips elsewhere.
func findMubeng(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(mubengPathEnv); p != "" {
		return p
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for dir := filepath.Dir(root); ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "shared", "peers", "mubeng")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	if p, err := exec.LookPath("mubeng"); err == nil {
		return p
	}
	msg := "mubeng not found (../shared/peers/mubeng from the project root, or on PATH): the documented --exec examples were not run against it"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// mubengSummary is what the run inside the namespaces reports.
type mubengSummary struct {
	Proxies  int
	Examples []string
}

// TestMubengDocExamples runs every `--exec` example of README.md and docs/*.md with the real
// mubeng against the lab: each with `proxyline check --exec`, and the first worker example with
// `proxyline worker --exec` on SQLite; every proxy mubeng can judge must come out as the lab's
// truth says (0 false positives, 0 false negatives).
//
// mubeng's check mode always asks https://ipinfo.io/json through each proxy. To keep every packet
// on this machine, the run happens in a private network namespace (only loopback exists: there is
// no route anywhere else, so no DNS query or connection can leave) and a private mount namespace
// whose /etc/hosts maps ipinfo.io to 127.0.0.1, where a judge answers as ipinfo.io; the lab's
// proxies know the name from lab.Config.Hosts (they never resolve anything).
func TestMubengDocExamples(t *testing.T) {
	if os.Getenv(mubengNSEnv) == "1" {
		mubengInNamespace(t)
		return
	}
	t.Parallel()
	mubeng := findMubeng(t)
	examples := docExecExamples(t)
	result := filepath.Join(t.TempDir(), "summary.json")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMubengDocExamples$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), mubengNSEnv+"=1", mubengPathEnv+"="+mubeng, mubengResultEnv+"="+result)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET | unix.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 { // an unprivileged user gets the namespaces inside a user namespace
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	out, err := cmd.CombinedOutput()
	t.Logf("inside the namespaces:\n%s", out)
	if err != nil {
		t.Fatalf("the run inside private namespaces failed: %v", err)
	}
	b, err := os.ReadFile(result)
	if err != nil {
		t.Fatalf("no summary from inside the namespaces (did it run?): %v", err)
	}
	var sum mubengSummary
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Examples) != len(examples)+1 || sum.Proxies == 0 {
		t.Fatalf("summary %+v: want the %d examples (and one worker run) checked", sum, len(examples))
	}
}

// mubengTimeout is mubeng's -t in every run: at load 45 its checks through live lab proxies took
// over 5 s (all of a worker's live proxies came out dead with 5 s), so the bound is one a busy
// machine does not reach; the lab's slow proxies (1 s) stay alive under it.
const mubengTimeout = 15 * time.Second

// mubengInNamespace is the run inside the private namespaces.
func mubengInNamespace(t *testing.T) {
	isolate(t)
	mubeng := os.Getenv(mubengPathEnv)
	t.Setenv("PATH", filepath.Dir(mubeng)+":"+os.Getenv("PATH"))
	serveIPInfo(t)
	const per = 6
	l, err := lab.Start(context.Background(), lab.Config{
		// Every kind mubeng can be given: it needs a scheme, so no bare host:port.
		HTTP: per, HTTPAuth: per, HTTPS: per, SOCKS4: per, SOCKS4A: per, SOCKS5: per, SOCKS5Auth: per,
		Transparent: per, Anonymous: per, Refused: per, Blackhole: per, Slow: per, Liar: per, Alter: per,
		Hosts: map[string]netip.Addr{"ipinfo.io": netip.MustParseAddr("127.0.0.1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop lab: %v", err)
		}
	}()
	work := t.TempDir()
	cand := filepath.Join(work, "candidates.txt")
	var list strings.Builder
	truth := l.Truth()
	for _, tr := range truth {
		list.WriteString(tr.Proxy.String() + "\n")
	}
	if err := os.WriteFile(cand, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := mubengSummary{Proxies: len(truth)}
	var worker *execExample
	for _, ex := range docExecExamples(t) {
		args := []string{"check", "-f", cand, "--exec", ex.Template, "-t", mubengTimeout.String(), "--chunk", "100", "--format", "jsonl", "--all"}
		if ex.PTY {
			args = append(args, "--exec-pty")
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), &Env{Stdout: &stdout, Stderr: &stderr}, args)
		if code != ExitOK {
			t.Fatalf("%s: proxyline %s: exit %d\n%s", ex.Where, strings.Join(args, " "), code, stderr.String())
		}
		compareAlive(t, ex.Where+" (check)", truth, stdout.String())
		sum.Examples = append(sum.Examples, ex.Where)
		if ex.Command == "worker" && worker == nil {
			worker = &ex
		}
	}
	if worker == nil {
		t.Fatal("no `proxyline worker --exec` example in the documentation")
	}
	compareAlive(t, worker.Where+" (worker)", truth, runExecWorker(t, cand, *worker))
	sum.Examples = append(sum.Examples, worker.Where+" worker")
	b, _ := json.Marshal(sum)
	if err := os.WriteFile(os.Getenv(mubengResultEnv), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// isolate makes this process's network and files private: loopback up and nothing else, and
// /etc/hosts (ipinfo.io is 127.0.0.1) and /etc/resolv.conf (a name server on loopback, where
// nothing listens) replaced for this mount namespace only.
func isolate(t *testing.T) {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make mounts private: %v", err)
	}
	dir := t.TempDir()
	for target, content := range map[string]string{
		"/etc/hosts":       "127.0.0.1 localhost ipinfo.io\n::1 localhost\n",
		"/etc/resolv.conf": "nameserver 127.0.0.1\n",
	} {
		src := filepath.Join(dir, filepath.Base(target))
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			t.Fatalf("bind %s over %s: %v", src, target, err)
		}
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatalf("bring lo up: %v", err)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 || ifs[0].Name != "lo" {
		t.Fatalf("interfaces %v: want only lo, or traffic could leave the machine", ifs)
	}
	if ips, err := net.DefaultResolver.LookupHost(context.Background(), "ipinfo.io"); err != nil || len(ips) != 1 || ips[0] != "127.0.0.1" {
		t.Fatalf("ipinfo.io resolves to %v, %v; want 127.0.0.1 only", ips, err)
	}
}

// serveIPInfo answers on 127.0.0.1:443 as ipinfo.io/json does (any certificate: mubeng does not
// verify), with the address the request came from.
func serveIPInfo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:443")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprintf(w, `{"ip":%q,"city":"Loopback","region":"Lab","country":"ZZ","loc":"0.0,0.0","org":"proxyline lab","timezone":"UTC"}`, ip)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the lab's alterers break handshakes on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
}

// runExecWorker puts the candidates on a SQLite queue, runs a real `proxyline worker --exec`
// until the queue drains, and returns the pool as `export --format jsonl --all` writes it.
func runExecWorker(t *testing.T, cand string, ex execExample) string {
	dir := t.TempDir()
	db := filepath.Join(dir, "queue.db")
	cmdRun := func(args ...string) string {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), &Env{Stdout: &stdout, Stderr: &stderr}, args); code != ExitOK {
			t.Fatalf("proxyline %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	cmdRun("enqueue", "--database", db, "--chunk", "40", "-t", mubengTimeout.String(), "--judge", "https://ipinfo.io/json", cand)
	args := []string{"worker", "--database", db, "--exec", ex.Template, "--grace", "2s"}
	if ex.PTY {
		args = append(args, "--exec-pty")
	}
	w := startProxyline(t, dir, args...)
	cmdRun("status", "--database", db, "--wait", "4m")
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.waited:
	case <-time.After(30 * time.Second):
		t.Fatalf("worker did not stop:\n%s", w.log())
	}
	return cmdRun("export", "--database", db, "--format", "jsonl", "--all")
}

// compareAlive checks results (JSON lines) against the truth: every proxy present once, alive
// exactly when the lab says so (an external tool says nothing more).
func compareAlive(t *testing.T, what string, truth []lab.Truth, results string) {
	t.Helper()
	outcomes, err := lab.ReadOutcomes(strings.NewReader(results))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	s := lab.Compare(truth, outcomes, lab.Conditions{Timeout: mubengTimeout, LiveOnly: true})
	if !s.OK() {
		var b strings.Builder
		_ = s.Write(&b)
		t.Errorf("%s: results differ from the lab's truth:\n%s", what, b.String())
	}
	t.Logf("%s: %d proxies, %d false positives, %d false negatives", what, s.Total, s.FalsePositives, s.FalseNegatives)
}
