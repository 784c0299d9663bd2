package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/testkit"
)

// killtest watch --once: its exit codes and what it prints. (The detectors themselves are
// tested against a leaky system in internal/killtest/watch.)
func TestWatchOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	probes := func(cmd string) string {
		return "name: q\nprobes:\n  depth: {command: {sh: '" + cmd + "'}}\nlimits:\n  - {probe: depth, at_most: 5}\n"
	}
	growth := write("growth.yaml", "name: g\nprocesses:\n  - {name: w, match: nothing-runs-this, fds: {max: 3}}\n")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout (or stderr for usage errors)
	}{
		{"clean", []string{write("clean.yaml", probes("echo 2"))}, 0, "watch q: clean"},
		{"limit", []string{write("limit.yaml", probes("echo 7"))}, 1, "limit: probe depth is 7, want depth <= 5"},
		{"probe down", []string{write("down.yaml", probes("exit 3"))}, 2, "cannot judge: probe depth"},
		{"growth needs state", []string{growth}, 2, "give --state FILE"},
		{"growth with state", []string{growth, "--state", filepath.Join(dir, "g.state")}, 0, "watch g: clean"},
		{"bad file", []string{write("bad.yaml", "name: b\ninterval: 1s\nprobes: {}\nlimits: [{probe: x, at_most: 1}]\n")}, 2, "bad.yaml:4: limits[0].probe: no probe named"},
		{"bad alert", []string{write("c2.yaml", probes("echo 2")), "--alert", "mail | x"}, 2, "only a program and its arguments"},
	} {
		res := killtest(t, append([]string{"watch", "--once"}, tc.args...)...)
		if res.code != tc.code || !strings.Contains(res.stdout+res.stderr, tc.want) {
			t.Errorf("%s: exit %d, want %d and %q\nstdout: %s\nstderr: %s", tc.name, res.code, tc.code, tc.want, res.stdout, res.stderr)
		}
	}
	// --json, and the alert command (through a shell, as asked) receives the finding as JSON.
	alerts := filepath.Join(dir, "alerts.jsonl")
	res := killtest(t, "watch", "--once", "--json", "--alert-shell", "--alert", "cat >> "+alerts, filepath.Join(dir, "limit.yaml"))
	var rep struct {
		Findings []struct{ Kind, Key string }
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != 1 || len(rep.Findings) != 1 || rep.Findings[0].Kind != "limit" {
		t.Fatalf("--json: exit %d, %v: %s", res.code, err, res.stdout)
	}
	b, err := os.ReadFile(alerts)
	if err != nil {
		t.Fatal(err)
	}
	var al struct {
		Watch   string
		Finding struct{ Key string }
	}
	if err := json.Unmarshal(b, &al); err != nil || al.Watch != "q" || al.Finding.Key != rep.Findings[0].Key {
		t.Errorf("alert: %v %s", err, b)
	}
}

// A running watch serves /metrics on loopback and stops with exit 0 on SIGTERM.
func TestWatchServes(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	file := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(file, []byte("name: served\ninterval: 200ms\nprobes: {depth: {command: {sh: 'echo 3'}}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bins(t), "killtest"), "watch", "--listen", addr, file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var body string
	testkit.WaitFor(t, time.Minute, "the watch serving its probe on /metrics", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		body = b.String()
		return strings.Contains(body, `killtest_watch_probe_value{probe="depth",watch="served"} 3`)
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit within 30 s of SIGTERM\n%s", stderr.String())
	}
}
