package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// units are the files shipped in this directory.
var units = []string{"proxyline.service", "proxyline-worker@.service", "killtest-watch.service", "killtest-watch.timer"}

// Drain deadlines the stop timeouts must exceed: proxyline run's shutdown.deadline default
// (run.toml, docs/run.md) and the worker's --grace plus its supervisor's grace for a checker.
const (
	runDrain    = 30 * time.Second
	workerDrain = 10*time.Second + 2*time.Second
)

// analyzer returns systemd-analyze, or skips (fails under CI) when the machine has none.
func analyzer(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err == nil {
		if _, err = os.Stat("/usr/lib/systemd/system/sysinit.target"); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("systemd-analyze or systemd's own units are missing (%v): .ci/run installs the systemd package", err)
	}
	t.Skipf("skipped: systemd-analyze or systemd's units missing (%v); apt-get install systemd", err)
	return ""
}

// verify runs systemd-analyze verify on unit files (paths) in a private root that has systemd's
// own units and stand-ins for our binaries, so it needs neither a running systemd (PID 1 here is
// not one) nor installed binaries. Any output is a problem: verify exits 0 on an unknown key.
func verify(t *testing.T, analyze string, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/local/bin", "etc/systemd/system", "usr/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A copy, not a symlink: systemd resolves its units' own symlinks inside the root.
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copy systemd's units: %v: %s", err, out)
	}
	for _, bin := range []string{"proxyline", "killtest"} {
		if err := os.WriteFile(filepath.Join(root, "usr/local/bin", bin), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	for name, text := range files {
		p := filepath.Join(root, "etc/systemd/system", name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no", "--root=" + root}, paths...)...).CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err != nil && msg == "" {
		msg = err.Error()
	}
	return msg
}

func readUnits(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		files[u] = string(b)
	}
	return files
}

func TestVerify(t *testing.T) {
	analyze := analyzer(t)
	if msg := verify(t, analyze, readUnits(t)); msg != "" {
		t.Errorf("systemd-analyze verify:\n%s", msg)
	}
	// Known bad: a misspelt key is caught (verify only warns about it).
	bad := readUnits(t)["proxyline.service"]
	bad = strings.Replace(bad, "\nKillMode=control-group", "\nKillMod=control-group", 1)
	if msg := verify(t, analyze, map[string]string{"proxyline.service": bad}); !strings.Contains(msg, "KillMod") {
		t.Errorf("a misspelt key went through: %q", msg)
	}
}

// keys reads a unit's [Service] (or any) section keys: the last value of each, as systemd takes
// it for these single-valued keys.
func keys(t *testing.T, text string) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("not a key=value line: %q", line)
		}
		out[k] = v
	}
	return out
}

// The rules of docs/operate.md: the whole cgroup killed with SIGTERM first, a stop timeout above
// the drain, delegation for task cgroups, a dedicated user, and the hardening that fits.
func TestUnitRules(t *testing.T) {
	files := readUnits(t)
	for name, drain := range map[string]time.Duration{"proxyline.service": runDrain, "proxyline-worker@.service": workerDrain, "killtest-watch.service": 0} {
		k := keys(t, files[name])
		want := map[string]string{
			"KillMode": "control-group", "KillSignal": "SIGTERM", "NoNewPrivileges": "yes",
			"ProtectSystem": "strict", "PrivateTmp": "yes", "User": "proxyline",
		}
		if drain > 0 {
			want["Delegate"] = "yes"
			want["ProtectHome"] = "yes"
		}
		for key, v := range want {
			if k[key] != v {
				t.Errorf("%s: %s=%q, want %q", name, key, k[key], v)
			}
		}
		for _, key := range []string{"RestrictAddressFamilies", "ReadWritePaths", "TimeoutStopSec"} {
			if k[key] == "" {
				t.Errorf("%s: no %s", name, key)
			}
		}
		if drain > 0 {
			stop, err := time.ParseDuration(k["TimeoutStopSec"] + "s")
			if err != nil || stop <= drain {
				t.Errorf("%s: TimeoutStopSec=%s is not above the drain deadline %s", name, k["TimeoutStopSec"], drain)
			}
			// These would break the cgroup delegation or the per-task PID namespaces.
			for _, key := range []string{"ProtectControlGroups", "PrivateUsers"} {
				if v := k[key]; v != "" && v != "no" {
					t.Errorf("%s: %s=%s breaks Delegate=yes or the PID namespace layer", name, key, v)
				}
			}
			if !strings.Contains(k["RestrictNamespaces"], "pid") {
				t.Errorf("%s: RestrictNamespaces=%q forbids the per-task PID namespaces", name, k["RestrictNamespaces"])
			}
		}
	}
	watch := keys(t, files["killtest-watch.service"])
	if !strings.Contains(watch["ExecStart"], "watch --once") || !strings.Contains(watch["ExecStart"], "--state ") {
		t.Errorf("killtest-watch.service: ExecStart=%s, want watch --once with --state", watch["ExecStart"])
	}
	if timer := keys(t, files["killtest-watch.timer"]); timer["OnUnitActiveSec"] == "" {
		t.Errorf("killtest-watch.timer: no OnUnitActiveSec")
	}
}
