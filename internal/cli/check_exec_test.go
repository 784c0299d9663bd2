package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckCommandExec runs check --exec with /bin/sh as the external tool: a tool that reports
// its whole chunk makes every proxy alive, one that reports a part makes the rest dead (one result
// per proxy, in jsonl with --all), and one that fails makes the run a runtime error (exit 3) that
// names the chunk, while the chunks that worked are still written.
func TestCheckCommandExec(t *testing.T) {
	t.Parallel()
	list := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(list, []byte("http://127.0.0.2:1\nsocks5://127.0.0.3:2\n127.0.0.4:3\nhttp://127.0.0.5:4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		template  string
		chunk     string
		code      int
		alive     int
		dead      int
		errSubstr string
	}{
		{name: "all live", template: "sh -c 'cp {in} {out}'", chunk: "10", code: ExitOK, alive: 4},
		{name: "first line live", template: "sh -c 'head -n 1 {in} > {out}'", chunk: "2", code: ExitOK, alive: 2, dead: 2},
		{name: "none live", template: "sh -c 'true'", chunk: "10", code: ExitFailure, dead: 4},
		{name: "tool fails", template: "sh -c 'exit 7'", chunk: "3", code: ExitError, errSubstr: "chunk 1 (3 proxies)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCheckCmd(t, context.Background(), "",
				"-f", list, "--exec", tt.template, "--chunk", tt.chunk, "-t", "2s", "--format", "jsonl", "--all")
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.errSubstr) {
				t.Fatalf("stderr does not say %q:\n%s", tt.errSubstr, stderr)
			}
			alive, dead := 0, 0
			for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
				if line == "" {
					continue
				}
				var r jsonResult
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("bad output line %q: %v", line, err)
				}
				switch r.Class {
				case "alive":
					alive++
				case "dead":
					dead++
				default:
					t.Errorf("class %q in %q", r.Class, line)
				}
			}
			if alive != tt.alive || dead != tt.dead {
				t.Fatalf("alive %d dead %d, want %d %d; stdout:\n%s", alive, dead, tt.alive, tt.dead, stdout)
			}
		})
	}
}
