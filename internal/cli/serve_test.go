package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/proxydial"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// writeProxyList writes ps to a list file in a temp dir.
func writeProxyList(t *testing.T, ps []proxy.Proxy) string {
	t.Helper()
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String() + "\n")
	}
	path := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeCommand(t *testing.T) {
	t.Parallel()
	l, err := lab.Start(context.Background(), lab.Config{HTTP: 2, Backend: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	list := writeProxyList(t, l.Candidates())
	for _, args := range [][]string{
		{"serve", "--listen", "0.0.0.0:0", "--from", list},
		{"serve", "--from", list, "--policy", "fast"},
		{"serve", "--from", list, "--rotate-every", "3", "--policy", "fastest"},
		{"serve", "--from", list, "--retries", "-1"},
		{"serve", "--from", list, "extra"},
	} {
		if code, _, stderr := runCheckCmd(t, context.Background(), "", args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, ExitUsage, stderr)
		}
	}
	_, stderr, stop := startServeCmd(t, "rotator ready", "serve", "--listen", "127.0.0.1:0", "--from", list,
		"--upstream-header", "X-Upstream")
	addr := regexp.MustCompile(`listen=(127\.0\.0\.1:\d+)`).FindStringSubmatch(stderr.String())
	if addr == nil {
		t.Fatalf("no address in %s", stderr)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr[1]})}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(l.BackendURL() + "bytes/10")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("X-Upstream"), "http://127.0.0.") {
		t.Errorf("through serve: %s %v", resp.Status, resp.Header)
	}
	if code := stop(); code != ExitOK {
		t.Errorf("exit %d after the stop; stderr:\n%s", code, stderr)
	}
}

// TestServeBinaryLargeBody runs the real binary (built without -race: its memory is measured) and
// sends 300 MB through it twice, as a plain HTTP response and through a CONNECT tunnel: the first
// bytes arrive while the backend still holds the last one (streamed, not buffered), and the
// process's peak RSS stays under 64 MiB. Then SIGTERM: exit 0, port free.
func TestServeBinaryLargeBody(t *testing.T) {
	t.Parallel()
	bin := testkit.BuildBinary(t, "./cmd/proxyline", testkit.NoRace())
	l, err := lab.Start(context.Background(), lab.Config{HTTP: 2, Backend: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	list := writeProxyList(t, l.Candidates())
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--from", list, "--drain", "5s")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addrc := make(chan string, 1)
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`rotator ready.* listen=(127\.0\.0\.1:\d+)`)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	defer func() { _ = cmd.Process.Kill() }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-exited:
		t.Fatalf("serve exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve not ready in 30 s")
	}
	const size = 300 << 20
	for i, tunnel := range []bool{false, true} {
		gate := fmt.Sprintf("big%d", i)
		body := openBig(t, addr, l, fmt.Sprintf("/bytes/%d?hold=%s", size, gate), tunnel)
		first := make([]byte, 1)
		got := make(chan error, 1)
		go func() { _, err := io.ReadFull(body, first); got <- err }()
		select {
		case err := <-got:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(60 * time.Second):
			l.Release(gate)
			t.Fatalf("tunnel=%v: no first byte while the backend held the last one: buffered", tunnel)
		}
		l.Release(gate)
		n, err := io.Copy(io.Discard, body)
		body.Close()
		if err != nil || n != size-1 {
			t.Fatalf("tunnel=%v: %d bytes after the first, %v", tunnel, n, err)
		}
	}
	hwm := peakRSS(t, cmd.Process.Pid)
	t.Logf("peak RSS of proxyline serve after 2 x 300 MB: %d KiB", hwm)
	if hwm > 64<<10 {
		t.Errorf("peak RSS %d KiB, want at most 64 MiB", hwm)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30 s after SIGTERM")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("port %s not free after the exit: %v", addr, err)
	} else {
		ln.Close()
	}
}

// openBig asks for path from the backend through the rotator at addr, as an absolute-URI GET or
// inside a CONNECT tunnel, and returns the response body.
func openBig(t *testing.T, addr string, l *lab.Lab, path string, tunnel bool) io.ReadCloser {
	t.Helper()
	backend, _ := url.Parse(l.BackendURL())
	if !tunnel {
		c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr}), DisableCompression: true}}
		resp, err := c.Get(l.BackendURL() + strings.TrimPrefix(path, "/"))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Body
	}
	host, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	conn, err := proxydial.Dial(context.Background(), proxy.Proxy{Scheme: proxy.HTTP, Host: host, Port: uint16(pn)}, "tcp", backend.Host, nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, backend.Host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return struct {
		io.Reader
		io.Closer
	}{resp.Body, conn}
}

// peakRSS reads VmHWM (KiB) of pid.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
