package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunCommandConfig: --print-config prints the defaults (which parse back), and a bad
// configuration, a bad flag or a refused listener is a usage error (exit 2) naming what is wrong,
// with nothing started.
func TestRunCommandConfig(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := run(context.Background(), env, []string{"run", "--print-config"}); code != ExitOK {
		t.Fatalf("--print-config: exit %d, %s", code, errb.String())
	}
	printed := filepath.Join(t.TempDir(), "printed.toml")
	if err := os.WriteFile(printed, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[workers]\nprocesses = 1\nthreads = 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--config", bad}, `bad.toml:3:1: unknown key "workers.threads"`},
		{[]string{"run", "--config", filepath.Join(t.TempDir(), "missing.toml")}, "missing.toml"},
		{[]string{"run", "--workers", "100", "--config", printed}, "--workers 100"},
		{[]string{"run", "--database", "mysql://x", "--config", printed}, "database.url"},
		{[]string{"run", "extra"}, `unexpected argument "extra"`},
	} {
		out.Reset()
		errb.Reset()
		if code := run(context.Background(), env, tc.args); code != ExitUsage {
			t.Errorf("%q: exit %d, want %d; stderr %s", tc.args, code, ExitUsage, errb.String())
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%q: stderr %q does not say %q", tc.args, errb.String(), tc.want)
		}
	}
}
