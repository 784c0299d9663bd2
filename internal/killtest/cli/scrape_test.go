package cli

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/proxyline/proxyline/internal/testkit"
)

// TestScrapeKnownBad shows that the built-in test1-scrape-sigterm and test2-scrape-sigkill can
// fail: the same systems with one promise broken on purpose (proxyline scrape --known-bad) must
// fail exactly the checks that promise is judged by. TestBuiltinSuite shows the good ones pass.
func TestScrapeKnownBad(t *testing.T) {
	t.Parallel()
	bin := testkit.BuildDir(t, "proxyline", testkit.Program{Pkg: "./cmd/proxyline", Opts: []testkit.BuildOption{testkit.NoRace()}})
	for _, c := range []struct {
		file string
		want []string
	}{
		{"bad-scrape-no-graceful-stop.yaml", []string{"graceful-exit fail", "probe proxies-json (after) fail",
			"probe all-txt (after) fail", "probe candidates (after) fail", "probe abandoned (after) fail"}},
		{"bad-scrape-partial-file.yaml", []string{"probe files-left (after) fail"}},
	} {
		js := filepath.Join(t.TempDir(), "r.json")
		res := killtest(t, "run", "--bin", bin, "--out", t.TempDir(), "--json", js, "--seed", "1",
			filepath.Join("..", "testdata", c.file))
		if res.code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s\n%s", c.file, res.code, res.stdout, res.stderr)
			continue
		}
		var failed []string
		for _, ch := range readJSON(t, js).Scenarios[0].Checks {
			if ch.Verdict != "pass" {
				failed = append(failed, ch.Name+" "+ch.Verdict)
			}
		}
		if !slices.Equal(failed, c.want) {
			t.Errorf("%s: checks not passing %v, want exactly %v\n%s", c.file, failed, c.want, res.stdout)
		}
	}
}
