package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// processesWith lists pids whose command line contains s.
func processesWith(t *testing.T, s string) []int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		if pid != os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}
