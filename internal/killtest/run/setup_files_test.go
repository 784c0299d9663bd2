package run

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/killtest/report"
)

// TestSetupEachRun: a system that refuses to start on its previous run's leftover (a file
// outside ${TMP}, as a Redis key would be) passes every run of --runs 3 because setup clears it
// before each run; without the setup, the second run fails.
func TestSetupEachRun(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "leftover")
	body := func(setup string) string {
		return fmt.Sprintf(`
name: setup-each-run
%s
components:
  - name: a
    sh: 'test ! -e %[2]s || { echo "leftover from the last run"; exit 9; }; touch %[2]s; echo up; exec sleep 600'
    ready: {log: "^up$", timeout: 5s}
    stop: {exit: [SIGTERM]}
`, setup, shared)
	}
	withSetup := body(fmt.Sprintf("setup:\n  - name: clear\n    sh: rm -f %s; echo cleared\n", shared))
	for i := 1; i <= 3; i++ {
		res := runYAML(t, withSetup, int64(i))
		if res.Verdict != report.Pass {
			t.Fatalf("run %d with setup: %s %+v", i, res.Verdict, res.Checks)
		}
		if c := check(t, res, "setup"); c.Verdict != report.Pass || !strings.Contains(c.Summary, "1 setup step(s) done") {
			t.Errorf("setup check %+v", c)
		}
		if s := events(res, "setup"); len(s) != 2 {
			t.Errorf("setup events %+v", s)
		}
	}
	res := runYAML(t, body(""), 4)
	if c := check(t, res, "ready"); c.Verdict != report.Fail || !strings.Contains(strings.Join(c.Details, " "), "leftover from the last run") {
		t.Fatalf("without setup the leftover must fail the run: %+v", c)
	}
	os.RemoveAll(res.LogsDir)
}

// TestSetupFailureIsUnknown: a failing setup step makes the run UNKNOWN with its output in the
// report, and no component starts; setup processes never carry the run cookie.
func TestSetupFailureIsUnknown(t *testing.T) {
	dir := t.TempDir()
	started := filepath.Join(dir, "component-started")
	cookie := filepath.Join(dir, "setup-env")
	res := runYAML(t, fmt.Sprintf(`
name: setup-fails
setup:
  - name: env
    sh: env > %s
  - name: create-schema
    sh: 'echo "psql: connection refused" >&2; exit 3'
  - name: never
    sh: exit 0
components:
  - name: a
    sh: touch %s; exec sleep 600
`, cookie, started), 1)
	if res.Verdict != report.Unknown || !strings.Contains(res.HarnessError, "setup step create-schema failed: exit 3") {
		t.Fatalf("verdict %s, harness error %q", res.Verdict, res.HarnessError)
	}
	c := check(t, res, "setup")
	if c.Verdict != report.Unknown || !strings.Contains(strings.Join(c.Details, "\n"), "psql: connection refused") {
		t.Errorf("setup check %+v", c)
	}
	if _, err := os.Stat(started); err == nil {
		t.Error("a component started after a failed setup")
	}
	env, err := os.ReadFile(cookie)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(env), CookieKey+"=") {
		t.Error("a setup step got the run cookie: it would be judged as the system")
	}
	if !strings.Contains(string(env), "TMPDIR="+filepath.Join(res.LogsDir, "tmp")) {
		t.Errorf("setup TMPDIR is not ${TMP}/tmp:\n%s", env)
	}
	os.RemoveAll(res.LogsDir)
}

// TestSetupTimeout: a setup step that hangs is killed at its timeout, with its whole group.
func TestSetupTimeout(t *testing.T) {
	res := runYAML(t, `
name: setup-hangs
setup:
  - sh: sleep 600 & sleep 601
    timeout: 300ms
components:
  - name: a
    sh: exec sleep 600
`, 1)
	if res.Verdict != report.Unknown || !strings.Contains(res.HarnessError, "did not finish within 300 ms") {
		t.Fatalf("verdict %s, harness error %q", res.Verdict, res.HarnessError)
	}
	os.RemoveAll(res.LogsDir)
}

// tmpWorker is a worker that does each task in a temp dir of its own ($TMPDIR, i.e. ${TMP}/tmp),
// as the seed's task did, and removes it when the task ends (a SIGKILL mid-task leaves it).
const tmpWorker = `
name: tmp-worker
components:
  - name: worker
    sh: 'd=$(mktemp -d); echo data > "$d/chunk.txt"; echo "task in $d"; exec sleep 600'
    ready: {log: "^task in", timeout: 5s}
    stop: {exit: [SIGTERM]}
%s
expect:
  files: %s
`

func TestFilesCheckFindsLeakedTempDir(t *testing.T) {
	res := runYAML(t, fmt.Sprintf(tmpWorker, "", "true"), 1)
	c := check(t, res, "files")
	if c.Verdict != report.Fail || len(c.Details) != 1 {
		t.Fatalf("files %+v", c)
	}
	d := c.Details[0]
	if !strings.HasPrefix(d, filepath.Join(res.LogsDir, "tmp", "tmp.")) || !strings.Contains(d, "(directory 0700, 1 entry below, 5 B)") {
		t.Errorf("leftover described as %q", d)
	}
	if res.Verdict != report.Fail {
		t.Errorf("verdict %s", res.Verdict)
	}
	os.RemoveAll(res.LogsDir)
}

func TestFilesCheckIgnores(t *testing.T) {
	for name, files := range map[string]string{
		"glob on the name":         `{ignore: ["tmp.*"]}`,
		"glob with a slash":        `{ignore: ["tmp/tmp.*"]}`,
		"dir outside the leftover": `{dirs: [logs]}`,
	} {
		t.Run(name, func(t *testing.T) {
			res := runYAML(t, fmt.Sprintf(tmpWorker, "", files), 1)
			if c := check(t, res, "files"); c.Verdict != report.Pass {
				t.Fatalf("files %+v", c)
			}
			os.RemoveAll(res.LogsDir)
		})
	}
}

// TestFilesCheckMissingDir: a watched directory that exists neither before the run nor after the
// stop (a typo) makes the check unknown, never a pass; a leftover found elsewhere still fails it.
func TestFilesCheckMissingDir(t *testing.T) {
	for files, want := range map[string]string{
		`{dirs: [tmpp]}`:      string(report.Unknown),
		`{dirs: [tmpp, tmp]}`: string(report.Fail),
	} {
		t.Run(files, func(t *testing.T) {
			res := runYAML(t, fmt.Sprintf(tmpWorker, "", files), 1)
			c := check(t, res, "files")
			if string(c.Verdict) != want || (want == string(report.Unknown) && !strings.Contains(c.Summary, "tmpp: it existed neither before")) {
				t.Fatalf("files %+v, want %s", c, want)
			}
			os.RemoveAll(res.LogsDir)
		})
	}
}

// TestFilesCheckOutputDir: a new directory holding only ignored outputs is their container, not
// a leftover; one that also holds something else is reported with it, and an empty new one is a
// leftover itself.
func TestFilesCheckOutputDir(t *testing.T) {
	for name, tc := range map[string]struct{ sh, want string }{
		"only outputs":      {sh: "mkdir out && echo 1 > out/a.txt && echo 2 > out/b.txt"},
		"outputs and stray": {sh: "mkdir out && echo 1 > out/a.txt && echo x > out/stray", want: "out/ (directory 0755, 1 entry below, 2 B)"},
		"empty new dir":     {sh: "mkdir out empty && echo 1 > out/a.txt", want: "empty/ (directory 0755, 0 entries below, 0 B)"},
	} {
		t.Run(name, func(t *testing.T) {
			res := runYAML(t, fmt.Sprintf(`
name: outdir
components:
  - name: a
    sh: 'umask 022; %s; touch ready.flag; exec sleep 600'
    ready: {file: "${TMP}/ready.flag"}
    stop: {exit: [SIGTERM]}
expect:
  files: {ignore: ["out/*.txt"]}
`, tc.sh), 1)
			c := check(t, res, "files")
			switch {
			case tc.want == "" && c.Verdict != report.Pass:
				t.Fatalf("files %+v, want PASS", c)
			case tc.want != "" && (c.Verdict != report.Fail || len(c.Details) != 1 || !strings.HasSuffix(c.Details[0], tc.want)):
				t.Fatalf("files %+v, want FAIL with %q", c, tc.want)
			}
			os.RemoveAll(res.LogsDir)
		})
	}
}

// TestFilesCheckNamedOutputs: what the scenario names as outputs (history sources, SQLite
// probe files, ready files) and killtest's own logs may stay; anything else may not.
func TestFilesCheckNamedOutputs(t *testing.T) {
	res := runYAML(t, `
name: outputs
components:
  - name: a
    sh: 'echo 1 > ids; echo "{\"id\":\"1\"}" > out.jsonl; touch ready.flag; exec sleep 600'
    ready: {file: "${TMP}/ready.flag"}
    stop: {exit: [SIGTERM]}
workload:
  steps:
    - sh: 'echo stray > stray.txt'
expect:
  files: true
  history:
    submitted: {file: "${TMP}/ids"}
    results: {jsonl: "${TMP}/out.jsonl"}
`, 1)
	c := check(t, res, "files")
	if c.Verdict != report.Fail || len(c.Details) != 1 || !strings.Contains(c.Details[0], "stray.txt (file 0644, 6 B)") {
		t.Fatalf("files %+v", c)
	}
	if h := check(t, res, "history"); h.Verdict != report.Pass {
		t.Errorf("history %+v", h)
	}
	os.RemoveAll(res.LogsDir)
}

// TestFaultTree: the process tree at a SIGKILL of a naive parent: the parent signalled and ended,
// its children orphaned (re-parented to the harness) and ended only at teardown.
func TestFaultTree(t *testing.T) {
	res := runYAML(t, `
name: tree
components:
  - name: naive
    sh: 'sleep 600 & sleep 601 & echo up; wait'
    ready: {log: up}
faults:
  - name: kill-parent
    signal: KILL
    target: {component: naive}
    when: {process: "^sleep 601$"}
expect:
  orphans: {grace: 300ms}
`, 1)
	if len(res.Trees) != 1 {
		t.Fatalf("trees %+v", res.Trees)
	}
	tr := res.Trees[0]
	if tr.Fault != "kill-parent" || tr.Signal != "SIGKILL" || tr.Firing != 1 || tr.Of != 1 {
		t.Errorf("tree %+v", tr)
	}
	var parent report.TreeProc
	kids := map[string]report.TreeProc{}
	for _, p := range tr.Procs {
		if strings.HasPrefix(p.Command, "sh -c") {
			parent = p
		} else {
			kids[p.Command] = p
		}
	}
	if !parent.Target || !parent.Ended || parent.Orphaned {
		t.Errorf("parent %+v", parent)
	}
	for _, cmd := range []string{"sleep 600", "sleep 601"} {
		k, ok := kids[cmd]
		if !ok || k.PPID != parent.PID || !k.Orphaned || k.Target || k.NewPPID != 0 {
			t.Errorf("%s: %+v (parent %d)", cmd, k, parent.PID)
		}
	}
	// The orphan evidence names its parent's command.
	c := check(t, res, "orphans")
	if c.Verdict != report.Fail || len(c.Evidence) == 0 {
		t.Fatalf("orphans %+v", c)
	}
	for _, e := range c.Evidence {
		if len(e.Chain) == 0 || e.Chain[0].PID != parent.PID || !strings.Contains(e.Chain[0].Command, "sleep 600 & sleep 601") {
			t.Errorf("evidence chain %+v", e.Chain)
		}
	}
	if res.BootTime.IsZero() {
		t.Error("no boot time in the report")
	}
	os.RemoveAll(res.LogsDir)
}

// TestExitEvidenceStartTime: the graceful-exit evidence of a component carries its real start
// time (the detector only knows its pid).
func TestExitEvidenceStartTime(t *testing.T) {
	res := runYAML(t, `
name: exit-start
components:
  - name: bad-exit
    sh: 'trap "exit 4" TERM; echo up; while :; do sleep 0.05; done'
    ready: {log: up}
`, 1)
	c := check(t, res, "graceful-exit")
	if c.Verdict != report.Fail || len(c.Evidence) != 1 {
		t.Fatalf("graceful-exit %+v", c)
	}
	if e := c.Evidence[0]; e.StartTime == 0 {
		t.Errorf("evidence %+v has no start time", e)
	}
	os.RemoveAll(res.LogsDir)
}
