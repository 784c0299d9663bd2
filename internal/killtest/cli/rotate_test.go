package cli

import (
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/proxyline/proxyline/internal/testkit"
)

// TestRotateKnownBad runs the rotator's known-bad twin of the built-in rotate-sigterm-tunnels:
// the same system with --drain 0 must fail exactly the workload check (its clients lose their
// downloads), which shows that the built-in's pass is the drain's doing, not a check that cannot
// fail. The built-in itself runs in TestBuiltinSuite.
func TestRotateKnownBad(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("the rotator scenarios need curl: %v", err)
	}
	bin := testkit.BuildDir(t, "proxyline", testkit.Program{Pkg: "./cmd/proxyline", Opts: []testkit.BuildOption{testkit.NoRace()}})
	js := filepath.Join(t.TempDir(), "r.json")
	res := killtest(t, "run", "--bin", bin, "--out", t.TempDir(), "--json", js, "--seed", "1",
		filepath.Join("..", "testdata", "bad-rotate-no-drain.yaml"))
	if res.code != 1 {
		t.Fatalf("no drain: exit %d, want 1\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	var failed []string
	for _, ch := range readJSON(t, js).Scenarios[0].Checks {
		if ch.Verdict != "pass" {
			failed = append(failed, ch.Name+" "+ch.Verdict)
		}
	}
	if !slices.Equal(failed, []string{"workload fail"}) {
		t.Errorf("no drain: checks not passing %v, want exactly [workload fail]\n%s", failed, res.stdout)
	}
}
