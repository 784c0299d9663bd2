package scrape

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestAtomicFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := createAtomic(path, false)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = a.WriteString("new\n")
	if b, _ := os.ReadFile(path); string(b) != "old\n" {
		t.Fatalf("before commit the old file must stay: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 && a.tmpName == "" {
		t.Errorf("O_TMPFILE left a name in the directory: %v", ents)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new\n" {
		t.Fatalf("after commit: %q", b)
	}
	a, _ = createAtomic(filepath.Join(dir, "dropped.txt"), false)
	_, _ = a.WriteString("x")
	a.Abort()
	if _, err := os.Stat(filepath.Join(dir, "dropped.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("aborted file exists: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files left: %v", ents)
	}
}

// TestSweepTemps: named temporary files of a dead process are removed, those of a live one
// (ours included) are kept.
func TestSweepTemps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dead := filepath.Join(dir, ".proxies.json.tmp.999999999.123")
	live := filepath.Join(dir, tempPrefix("all.txt")+"456")
	other := filepath.Join(dir, "notes.tmp.1.txt")
	for _, p := range []string{dead, live, other} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed := sweepTemps(dir)
	if len(removed) != 1 || removed[0] != filepath.Base(dead) {
		t.Errorf("removed %v, want only %s", removed, dead)
	}
	for _, p := range []string{live, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestAtomicFileCopyFallback: where linking by descriptor is refused (before Linux 6.10,
// unprivileged), Commit copies the data into a named temporary file and renames it.
func TestAtomicFileCopyFallback(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "out.txt")
	a, err := createAtomic(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.tmpName != "" {
		t.Skip("no O_TMPFILE on this file system")
	}
	_, _ = a.WriteString("data\n")
	name, err := a.copyToTemp()
	if err != nil {
		t.Fatal(err)
	}
	a.Abort()
	if b, err := os.ReadFile(name); err != nil || string(b) != "data\n" {
		t.Fatalf("copy: %q, %v", b, err)
	}
}
