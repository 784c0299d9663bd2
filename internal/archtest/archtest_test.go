package archtest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, dir string) []Package {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pkgs, err := Load(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) == 0 {
		t.Fatalf("no package listed in %s", dir)
	}
	return pkgs
}

// TestModuleLayers runs the rules over this module: every package placed, documented, and
// importing only what its layer may.
func TestModuleLayers(t *testing.T) {
	t.Parallel()
	pkgs := load(t, filepath.Join("..", ".."))
	for _, err := range Check(pkgs, Layers) {
		t.Error(err)
	}
	// The rules are only as good as the graph: make sure the imports were loaded.
	i := slices.IndexFunc(pkgs, func(p Package) bool { return p.Path == "internal/killtest/run" })
	if i < 0 || !slices.Contains(pkgs[i].Imports, "internal/killtest/scenario") {
		t.Errorf("internal/killtest/run not listed with its import of internal/killtest/scenario: Load did not see the graph")
	}
}

// TestFixtureBreaksEveryRule is the known-bad fixture: a module in testdata that breaks each
// rule once. Each must be reported, and nothing else.
func TestFixtureBreaksEveryRule(t *testing.T) {
	t.Parallel()
	got := Check(load(t, filepath.Join("testdata", "badmod")), Layers)
	want := []string{
		"cmd/tool imports internal/testdb: only tests import test support",
		"internal/killtest/run imports internal/queue: killtest imports nothing of the pipeline (only the base layer)",
		"internal/nolayer: no layer: add it to archtest.Layers and docs/packages.md",
		"internal/proctab (base) imports internal/queue (service): imports go down the layers, never up",
		"internal/queue: no package doc comment",
	}
	var msgs []string
	for _, err := range got {
		msgs = append(msgs, err.Error())
	}
	if !slices.Equal(msgs, want) {
		t.Errorf("violations:\n  %s\nwant:\n  %s", strings.Join(msgs, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestRules covers the arrows the fixture cannot hold (a module has one layout).
func TestRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		from, imp string
		bad       bool
	}{
		{"internal/queue", "internal/killtest/detect", true}, // the pipeline never imports killtest
		{"internal/killtest/watch", "internal/serve", false}, // killtest may use the base layer
		{"internal/killtest/cli", "internal/killtest/run", false},
		{"internal/testkit", "internal/queue", false}, // test support may import services
		{"internal/testkit", "internal/cli", true},    // but not the command layers
		{"internal/cli", "internal/queue", false},
		{"internal/queue", "internal/cli", true},
		{"internal/check", "internal/check/external", false}, // same layer
		{"cmd/proxyline", "internal/supervise", false},
	} {
		from, _ := LayerOf(Layers, tc.from)
		err := checkImport(tc.from, from, tc.imp, Layers)
		if (err != nil) != tc.bad {
			t.Errorf("%s -> %s: error %v, want bad=%v", tc.from, tc.imp, err, tc.bad)
		}
	}
}

// TestDocsMapEveryPackage keeps docs/packages.md complete: every package with a layer is named
// there.
func TestDocsMapEveryPackage(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "packages.md"))
	if err != nil {
		t.Fatal(err)
	}
	for path := range Layers {
		if !strings.Contains(string(b), "`"+path+"`") {
			t.Errorf("docs/packages.md does not name `%s`", path)
		}
	}
}
