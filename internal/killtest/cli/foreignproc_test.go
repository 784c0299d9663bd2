package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestForeignProcRefused runs killtest in a new PID namespace that keeps the outer /proc
// (unshare --pid without --mount-proc), where every pid it reads names another process than the
// one it signals: each scenario must be a harness error naming the cause, never judged.
func TestForeignProcRefused(t *testing.T) {
	t.Parallel()
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs root and util-linux unshare: %v", err)
		}
		t.Skip("needs root and unshare")
	}
	bin := bins(t)
	out := t.TempDir()
	js := filepath.Join(out, "r.json")
	cmd := exec.Command(unshare, "--pid", "--fork", "--kill-child", filepath.Join(bin, "killtest"),
		"run", "--bin", bin, "--out", out, "--json", js, filepath.Join("..", "testdata", "good.yaml"))
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("killtest under unshare --pid without its /proc: %v, want exit 2 (not judged)\n%s", err, outb.String())
	}
	s := readJSON(t, js)
	if len(s.Scenarios) != 1 || s.Scenarios[0].Verdict != "unknown" ||
		!strings.Contains(s.Scenarios[0].HarnessError, "/proc belongs to another PID namespace") {
		t.Errorf("want one unknown scenario whose harness error names the foreign /proc, got %+v\n%s", s.Scenarios, outb.String())
	}
}
