package run

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
	"github.com/proxyline/proxyline/internal/killtest/history"
	"github.com/proxyline/proxyline/internal/killtest/report"
	"github.com/proxyline/proxyline/internal/killtest/scenario"
	"github.com/proxyline/proxyline/internal/testkit"
)

// The observer makes the process a subreaper, which is process-wide: the tests that run
// scenarios run one at a time (no t.Parallel).

func TestMain(m *testing.M) { testkit.Main(m) }

// runYAML parses and runs a scenario; marker is a unique string the scenario's processes carry
// in their command lines, checked gone after the run.
func runYAML(t *testing.T, yaml string, seed int64) report.Scenario {
	t.Helper()
	marker := setMarker(t)
	sc, err := scenario.Parse(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	res := Run(context.Background(), sc, 1, seed, Options{})
	if res.CleanupError != "" {
		t.Fatalf("cleanup: %s", res.CleanupError)
	}
	if left := withMarker(t, marker); len(left) > 0 {
		t.Fatalf("processes left after the run: %v", left)
	}
	return res
}

// setMarker puts a unique KTMARK variable in the environment the runner passes on to every
// process of the scenario, and a fresh TMPDIR.
func setMarker(t *testing.T) string {
	marker := fmt.Sprintf("KTMARK=%d", time.Now().UnixNano())
	t.Setenv("KTMARK", strings.TrimPrefix(marker, "KTMARK="))
	t.Setenv("TMPDIR", t.TempDir())
	return marker
}

// withMarker lists the processes whose environment holds marker (other than this one), and
// whose command line contains contains.
func withMarker(t *testing.T, marker string, contains ...string) []string {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []string
	for _, d := range dirs {
		if filepath.Base(d) == fmt.Sprint(os.Getpid()) {
			continue
		}
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil || !strings.Contains("\x00"+string(env)+"\x00", "\x00"+marker+"\x00") {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		line := strings.ReplaceAll(string(cmd), "\x00", " ")
		if len(contains) > 0 && !strings.Contains(line, contains[0]) {
			continue
		}
		out = append(out, filepath.Base(d)+": "+line)
	}
	return out
}

func check(t *testing.T, res report.Scenario, name string) report.Check {
	t.Helper()
	for _, c := range res.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, res.Checks)
	return report.Check{}
}

func events(res report.Scenario, kind string) []report.Event {
	var out []report.Event
	for _, e := range res.Events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// The scenario's timeouts bound waits for conditions (met at once on a quiet machine): at load
// 44 the first probe (sh and grep) had not finished within the old 5 s.
func TestLifecycleAndLogTrigger(t *testing.T) {
	res := runYAML(t, `
name: lifecycle
components:
  - name: srv
    # "working" again and again: a trigger that subscribes late (a busy machine) still sees one.
    sh: 'trap "echo got hup" HUP; trap "exit 0" TERM; echo ready; while :; do echo working; sleep 0.2; done'
    ready: {log: "^ready", timeout: 60s}
    stop: {deadline: 10s}
workload:
  steps:
    - sh: echo done > step.txt
faults:
  - signal: HUP
    target: {component: srv}
    when: {log: {component: srv, regex: "^working"}, timeout: 60s}
wait:
  - {probe: hup, equals: 1, timeout: 60s}
probes:
  hup:
    command: {sh: "grep -c 'got hup' logs/srv.log || true"}
`, 1)
	if res.Verdict != report.Pass {
		t.Fatalf("verdict %s: %+v", res.Verdict, res.Checks)
	}
	for _, name := range []string{"orphans", "zombies", "graceful-exit", "workload", "wait", "faults"} {
		if c := check(t, res, name); c.Verdict != report.Pass {
			t.Errorf("%s: %s %s", name, c.Verdict, c.Summary)
		}
	}
	if f := events(res, "fault"); len(f) != 1 || !strings.Contains(f[0].Detail, "SIGHUP") || !strings.Contains(f[0].Detail, "log line") {
		t.Errorf("fault events %+v", f)
	}
	if res.LogsDir != "" {
		t.Errorf("a passing run kept its temp dir %s", res.LogsDir)
	}
}

func TestReadyFailureIsSystemFailure(t *testing.T) {
	res := runYAML(t, `
name: ready-fail
components:
  - name: dies
    sh: echo  starting; exit 3
    ready: {log: never, timeout: 3s}
`, 1)
	c := check(t, res, "ready")
	if c.Verdict != report.Fail || !strings.Contains(c.Summary, "exited (exit 3) before it was ready") {
		t.Fatalf("ready check %+v", c)
	}
	if len(c.Details) == 0 || !strings.Contains(strings.Join(c.Details, "\n"), "starting") {
		t.Errorf("no output lines as evidence: %v", c.Details)
	}
	if res.Verdict != report.Fail || res.LogsDir == "" {
		t.Errorf("verdict %s, logs %q", res.Verdict, res.LogsDir)
	}
	os.RemoveAll(res.LogsDir)
}

func TestMissingProgramIsUnknown(t *testing.T) {
	res := runYAML(t, `
name: missing
needs: [killtest-no-such-program]
components:
  - {name: a, command: [killtest-no-such-program]}
`, 1)
	if res.Verdict != report.Unknown || !strings.Contains(res.HarnessError, "killtest-no-such-program") {
		t.Fatalf("verdict %s, harness error %q", res.Verdict, res.HarnessError)
	}
	os.RemoveAll(res.LogsDir)
}

func TestStepTimeoutKillsGroup(t *testing.T) {
	res := runYAML(t, `
name: step-timeout
workload:
  steps:
    - sh: sleep 600  & sleep 601 
      timeout: 300ms
`, 1)
	c := check(t, res, "workload")
	if c.Verdict != report.Fail || !strings.Contains(strings.Join(c.Details, " "), "timed out") {
		t.Fatalf("workload check %+v", c)
	}
	os.RemoveAll(res.LogsDir)
}

func TestStopEscalation(t *testing.T) {
	res := runYAML(t, `
name: stubborn
components:
  - name: stubborn
    sh: 'trap "" TERM; echo  up; while :; do sleep 0.05; done'
    ready: {log: up}
    stop: {deadline: 300ms}
expect:
  orphans: {grace: 3s}
`, 1)
	c := check(t, res, "graceful-exit")
	if c.Verdict != report.Fail {
		t.Fatalf("graceful-exit %+v", c)
	}
	if st := events(res, "stop"); len(st) < 2 || !strings.Contains(st[1].Detail, "SIGKILL") {
		t.Errorf("stop events %+v", st)
	}
	os.RemoveAll(res.LogsDir)
}

func TestFaultThatNeverFiresIsUnknown(t *testing.T) {
	res := runYAML(t, `
name: no-fire
components:
  - name: a
    sh: echo ; exec sleep 600
    stop: {exit: [SIGTERM]}
faults:
  - signal: KILL
    target: {component: a}
    when: {process: "^nothing-like-this$", timeout: 300ms}
`, 1)
	c := check(t, res, "faults")
	if c.Verdict != report.Unknown || res.Verdict != report.Unknown {
		t.Fatalf("faults %+v, verdict %s", c, res.Verdict)
	}
	os.RemoveAll(res.LogsDir)
}

// TestSeededWindow: the same seed picks the same moment; the moment is in the window.
func TestSeededWindow(t *testing.T) {
	yaml := `
name: window
components:
  - name: a
    sh: echo ; exec sleep 600
    stop: {exit: [SIGTERM]}
faults:
  - signal: CONT
    target: {component: a}
    when: {window: {from: 10ms, to: 400ms}}
`
	moment := regexp.MustCompile(`seeded moment (\S+) in`)
	pick := func(seed int64) time.Duration {
		res := runYAML(t, yaml, seed)
		f := events(res, "fault")
		if len(f) != 1 {
			t.Fatalf("fault events %+v", f)
		}
		m := moment.FindStringSubmatch(f[0].Detail)
		if m == nil {
			t.Fatalf("fault detail %q", f[0].Detail)
		}
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatal(err)
		}
		if d < 10*time.Millisecond || d > 400*time.Millisecond {
			t.Fatalf("moment %v outside the window", d)
		}
		return d
	}
	if a, b := pick(5), pick(5); a != b {
		t.Errorf("seed 5 picked %v then %v", a, b)
	}
}

// TestTargets: tree kills the component and its children; match picks by command line; random
// picks exactly one descendant.
func TestTargets(t *testing.T) {
	cases := []struct {
		name   string
		target string
		killed int // processes signalled
	}{
		{"tree", "{component: a, tree: true}", 4},
		{"match", `{component: a, match: "sleep 60[12]"}`, 2},
		{"random", "{component: a, random: true}", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := runYAML(t, `
name: targets
components:
  - name: a
    sh: 'sleep 600  & sleep 601  & sleep 602  & echo up; wait'
    ready: {log: up}
    stop: {signal: KILL, exit: [SIGKILL]}
faults:
  - signal: KILL
    target: `+c.target+`
    when: {process: "sleep 602"}
expect:
  orphans: false
`, 3)
			f := events(res, "fault")
			if len(f) != 1 || len(f[0].PIDs) != c.killed {
				t.Fatalf("fault events %+v, want %d pids", f, c.killed)
			}
			os.RemoveAll(res.LogsDir)
		})
	}
}

// TestCancel: canceling the context mid-run stops everything and leaves nothing behind.
func TestCancel(t *testing.T) {
	marker := setMarker(t)
	sc, err := scenario.Parse("cancel.yaml", []byte(`
name: cancel
components:
  - name: a
    sh: 'sleep 600 & echo up; wait'
    ready: {log: up}
workload:
  steps:
    - {sh: "exec sleep 601", timeout: 1m}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan report.Scenario, 1)
	go func() { done <- Run(ctx, sc, 1, 1, Options{}) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(withMarker(t, marker, "sleep 601")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("step never started")
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	cancel()
	res := <-done
	if res.CleanupError != "" {
		t.Fatal(res.CleanupError)
	}
	if left := withMarker(t, marker); len(left) > 0 {
		t.Fatalf("left after cancel: %v", left)
	}
	os.RemoveAll(res.LogsDir)
}

func TestLineHub(t *testing.T) {
	t.Parallel()
	h := &lineHub{}
	h.add("alpha")
	ch, stop := h.wait(regexp.MustCompile("^al"), 0)
	defer stop()
	if got := <-ch; got != "alpha" {
		t.Fatalf("got %q", got)
	}
	ch2, stop2 := h.wait(regexp.MustCompile("^al"), h.count())
	defer stop2()
	select {
	case l := <-ch2:
		t.Fatalf("matched an old line %q", l)
	default:
	}
	h.add("beta")
	h.add("altitude")
	if got := <-ch2; got != "altitude" {
		t.Fatalf("got %q", got)
	}
	if tail := h.tail(2); strings.Join(tail, ",") != "beta,altitude" {
		t.Fatalf("tail %v", tail)
	}
}

func TestLookPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prog := filepath.Join(dir, "kt-prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := lookPath("kt-prog", "/nonexistent:"+dir); err != nil || p != prog {
		t.Fatalf("lookPath = %q, %v", p, err)
	}
	if _, err := lookPath("kt-prog", "/usr/bin"); err == nil {
		t.Fatal("found outside PATH")
	}
	if err := os.WriteFile(filepath.Join(dir, "noexec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lookPath("noexec", dir); err == nil {
		t.Fatal("non-executable accepted")
	}
}

// TestScenarioTimeoutStillJudged: a system that hangs past the scenario timeout fails its
// workload, and the process checks still give verdicts.
func TestScenarioTimeoutStillJudged(t *testing.T) {
	res := runYAML(t, `
name: hang
timeout: 1s
workload:
  steps:
    - {command: [sleep, "600"], timeout: 1m}
`, 1)
	if c := check(t, res, "workload"); c.Verdict != report.Fail {
		t.Fatalf("workload %+v", c)
	}
	if c := check(t, res, "orphans"); c.Verdict != report.Pass {
		t.Fatalf("orphans after a timeout: %+v", c)
	}
	os.RemoveAll(res.LogsDir)
}

// TestHistoryFromSQL: ids submitted in a file, results from an SQLite query with outputs, and
// checksums: one lost, one corrupted.
func TestHistoryFromSQL(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "r.db")
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(`create table results(id text, output text); insert into results values ('a','A'),('b','wrong')`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	sums := filepath.Join(dir, "sums")
	if err := os.WriteFile(sums, []byte("a "+history.Checksum("A")+"\nb "+history.Checksum("B")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runYAML(t, fmt.Sprintf(`
name: sql-history
workload:
  steps:
    - sh: printf 'a\nb\nc\n' > ids.txt
expect:
  history:
    submitted: {file: "${TMP}/ids.txt"}
    results: {sql: {driver: sqlite, dsn: %q, query: "select id, output from results"}}
    checksums: %q
`, db, sums), 1)
	c := check(t, res, "history")
	details := strings.Join(c.Details, "\n")
	if c.Verdict != report.Fail || !strings.Contains(details, "lost 1") || !strings.Contains(details, ": c") || !strings.Contains(details, "corrupted 1") || !strings.Contains(details, "b at sql row 2") {
		t.Fatalf("history %+v", c)
	}
	os.RemoveAll(res.LogsDir)
}

// TestNoCgroupStillFindsOrphans: without the run cgroup, attribution by cookie and re-parenting
// still finds the orphan of a SIGKILLed parent, and teardown still removes it.
func TestNoCgroupStillFindsOrphans(t *testing.T) {
	marker := setMarker(t)
	sc, err := scenario.Parse("nocg.yaml", []byte(`
name: nocg
components:
  - name: naive
    sh: 'sleep 600 & echo up; wait'
    ready: {log: up}
faults:
  - signal: KILL
    target: {component: naive}
    when: {process: "^sleep 600$"}
expect:
  orphans: {grace: 500ms}
`))
	if err != nil {
		t.Fatal(err)
	}
	res := Run(context.Background(), sc, 1, 1, Options{NoCgroup: true})
	if res.CleanupError != "" {
		t.Fatal(res.CleanupError)
	}
	if c := check(t, res, "orphans"); c.Verdict != report.Fail || len(c.Evidence) != 1 || c.Evidence[0].Cmdline != "sleep 600" {
		t.Fatalf("orphans %+v", c)
	}
	for _, n := range res.Notes {
		if strings.Contains(n, "run cgroup /") {
			t.Errorf("a run cgroup was made with NoCgroup: %s", n)
		}
	}
	if left := withMarker(t, marker); len(left) > 0 {
		t.Fatalf("left: %v", left)
	}
	os.RemoveAll(res.LogsDir)
}

// TestFaultKillsAreNotJudged: a fault's SIGKILL is never the system's failure, whatever target
// form selected the process: a match that hits a component's own main process, a match that
// hits the child of a shell main process (which then exits 137). A non-KILL fault signal is
// judged like a stop: the exit status must be accepted.
func TestFaultKillsAreNotJudged(t *testing.T) {
	cases := []struct {
		name      string
		component string // the component's command
		fault     string
		want      detect.Verdict // graceful-exit
		detail    string         // in the check's details or evidence
	}{
		{"match hits the main process", `command: [sleep, "600"]`,
			`{signal: KILL, target: {match: "^sleep 600$"}, when: {after: 100ms}}`, report.Pass, "was SIGKILLed by a fault: not judged"},
		{"match with component hits the main process's child", `sh: "trap '' TERM; sleep 601; exit $?"`,
			`{signal: KILL, target: {component: a, match: "^sleep 601$"}, when: {process: "^sleep 601$"}}`, report.Pass,
			"ended with exit 137 after fault fault-1 sent SIGKILL to its descendant"},
		{"tree", `sh: "sleep 602; exit $?"`,
			`{signal: KILL, target: {component: a, tree: true}, when: {process: "^sleep 602$"}}`, report.Pass, "was SIGKILLed by a fault: not judged"},
		{"a SIGTERM is judged as a stop", `sh: "trap 'exit 3' TERM; sleep 603 & wait"`,
			`{signal: TERM, target: {match: "^sh -c trap"}, when: {process: "^sleep 603$"}}`, report.Fail, "exit code 3"},
		// run-lifecycle's "SIGTERM under load, then a restart": the SIGTERMed instance must exit
		// with an accepted status within its stop deadline, or fail; the restarted (well-behaved)
		// instance does not hide it. Known-bad twins: exit 1, and SIGTERM ignored.
		{"a SIGTERM with restart, exit 1", `sh: "if [ -e started ]; then trap 'exit 0' TERM; else touch started; trap 'exit 1' TERM; fi; sleep 604 & wait"`,
			`{signal: TERM, target: {component: a}, when: {process: "^sleep 604$"}, restart: true}`, report.Fail, "exit code 1"},
		{"a SIGTERM with restart, ignored", `sh: "if [ -e started ]; then trap 'exit 0' TERM; else touch started; trap '' TERM; fi; sleep 605 & wait"`,
			`{signal: TERM, target: {component: a}, when: {process: "^sleep 605$"}, restart: true}`, report.Fail, "did not exit within the stop grace"},
		// Ready once its trap is set: the final stop's SIGTERM comes right after the restart, and
		// reached a sh that had not yet run `trap` (ended by SIGTERM, code 143: seen in CI).
		{"a SIGTERM with restart, exit 0 in time", "sh: \"trap 'exit 0' TERM; echo up; sleep 606 & wait\"\n    ready: {log: \"^up$\"}",
			`{signal: TERM, target: {component: a}, when: {process: "^sleep 606$"}, restart: true}`, report.Pass, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := runYAML(t, `
name: fault-kills
components:
  - name: a
    `+c.component+`
    stop: {exit: [0]}
faults:
  - `+c.fault+`
expect:
  orphans: false
`, 1)
			g := check(t, res, "graceful-exit")
			all := strings.Join(g.Details, "\n")
			for _, e := range g.Evidence {
				all += "\n" + e.Detail
			}
			if g.Verdict != c.want || !strings.Contains(all, c.detail) {
				t.Fatalf("graceful-exit %s %q, details:\n%s\nwant %s with %q", g.Verdict, g.Summary, all, c.want, c.detail)
			}
			if f := events(res, "fault"); len(f) != 1 {
				t.Fatalf("fault events %+v", f)
			}
			os.RemoveAll(res.LogsDir)
		})
	}
}

// TestPortHeldBeforeTheRun: a port the scenario needs, held before the run by a process that is
// not part of it, makes the run UNKNOWN (a harness error, exit 2) naming the holder; neither
// `ready` nor `ports` may fail for it.
func TestPortHeldBeforeTheRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	res := runYAML(t, fmt.Sprintf(`
name: port-held
components:
  - name: srv
    sh: echo up; exec sleep 600
    ready: {tcp: "127.0.0.1:%d"}
    stop: {exit: [SIGTERM]}
expect:
  ports:
    ports: [%d]
`, port, port), 1)
	if res.Verdict != report.Unknown || len(res.Checks) != 0 {
		t.Fatalf("verdict %s, checks %+v: want unknown without checks", res.Verdict, res.Checks)
	}
	want := fmt.Sprintf("by pid %d (`", os.Getpid())
	if !strings.Contains(res.HarnessError, "already in use before the run") || !strings.Contains(res.HarnessError, want) ||
		!strings.Contains(res.HarnessError, "expect.ports") || !strings.Contains(res.HarnessError, "ready.tcp of srv") {
		t.Fatalf("harness error %q: want both uses of the port and the holder %q", res.HarnessError, want)
	}
	os.RemoveAll(res.LogsDir)
}

// TestAllowedDaemon: a process the system deliberately daemonizes while a component starts up
// is allowed by expect.orphans.allow and named in the summary; without the allow-list it is an
// orphan; a process orphaned later in the run is an orphan even when its command matches.
func TestAllowedDaemon(t *testing.T) {
	const comp = `
components:
  - name: d
    # The subshell forks the daemon and exits before "up": orphaned during the start-up.
    sh: '(sleep 30 &); echo up; exec sleep 601'
    ready: {log: "^up$"}
    stop: {exit: [SIGTERM]}
`
	cases := []struct {
		name, rest string
		want       detect.Verdict
		summary    string
	}{
		{"allowed", "expect:\n  orphans: {allow: ['^sleep 30$']}\n", report.Pass, "allowed: pid "},
		{"not allowed", "", report.Fail, "left alive"},
		{"orphaned later", `
  - name: w
    sh: 'echo up; sleep 1; (sleep 30 &); exec sleep 602'
    ready: {log: "^up$"}
    stop: {exit: [SIGTERM]}
workload:
  steps:
    - command: [sleep, "1.5"]
expect:
  orphans: {allow: ['^sleep 30$']}
`, report.Fail, "1 process(es) orphaned during the run"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := runYAML(t, "name: daemon\n"+comp+c.rest, 1)
			o := check(t, res, "orphans")
			if o.Verdict != c.want || !strings.Contains(o.Summary, c.summary) {
				t.Fatalf("orphans %s %q, want %s with %q; evidence %+v", o.Verdict, o.Summary, c.want, c.summary, o.Evidence)
			}
			if c.want == report.Pass && !strings.Contains(o.Summary, "`sleep 30` (daemonized while d#1 started up)") {
				t.Errorf("summary %q does not name the allowed daemon", o.Summary)
			}
			os.RemoveAll(res.LogsDir)
		})
	}
}

// TestStopOrphanEndedBySibling: a process orphaned by its component's stop, blocked on a sibling
// component that is stopped next, is an orphan (it outlived its parent by more than the grace
// before the sibling's stop ended it); the same system whose worker stops its child first
// passes. The pipe stands in for a server: the reader blocks until the server's stop closes the
// write end.
func TestStopOrphanEndedBySibling(t *testing.T) {
	cases := []struct {
		name   string
		worker string
		want   detect.Verdict
	}{
		{"worker leaves its reader", `cat "${TMP}/f" & echo up; wait`, report.Fail},
		{"worker stops its reader", `trap 'kill $!; wait; exit 0' TERM; cat "${TMP}/f" & echo up; wait`, report.Pass},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := runYAML(t, `
name: stop-orphan
setup:
  - command: [mkfifo, "${TMP}/f"]
components:
  - name: server
    sh: 'exec 3<>"${TMP}/f"; echo up; exec sleep 600'
    ready: {log: "^up$"}
    stop: {exit: [SIGTERM]}
  - name: worker
    sh: |-
      `+c.worker+`
    ready: {log: "^up$"}
    stop: {exit: [0, SIGTERM]}
workload:
  steps:
    - command: [sleep, "0.3"]
expect:
  orphans: {grace: 500ms}
`, 1)
			o := check(t, res, "orphans")
			if o.Verdict != c.want {
				t.Fatalf("orphans %s %q, want %s; evidence %+v", o.Verdict, o.Summary, c.want, o.Evidence)
			}
			if c.want == report.Fail {
				e := o.Evidence[0]
				if e.Class != detect.OrphanAfterStop || !strings.Contains(e.Detail, "orphaned by the stop") ||
					!strings.Contains(e.Detail, "after component server began to stop") || e.WithoutParentMin <= 500*time.Millisecond {
					t.Fatalf("evidence %+v", e)
				}
				if len(events(res, "settle")) != 1 {
					t.Errorf("settle events %+v", events(res, "settle"))
				}
			}
			for _, ch := range res.Checks {
				if ch.Name != "orphans" && ch.Verdict != report.Pass {
					t.Errorf("check %s %s: %s %v", ch.Name, ch.Verdict, ch.Summary, ch.Details)
				}
			}
			os.RemoveAll(res.LogsDir)
		})
	}
}

// TestNothingCheckedIsUnknown: a scenario that turns every check off judges nothing, and
// nothing judged is never a pass.
func TestNothingCheckedIsUnknown(t *testing.T) {
	res := runYAML(t, `
name: nothing
components:
  - {name: a, command: [sleep, "600"], stop: {exit: [SIGTERM]}}
expect: {orphans: false, zombies: false, stopped: false, ports: false, exit: false}
`, 1)
	if res.Verdict != report.Unknown || !strings.Contains(res.HarnessError, "no check ran") {
		t.Fatalf("verdict %s, harness error %q, checks %+v: want unknown, no check ran", res.Verdict, res.HarnessError, res.Checks)
	}
	os.RemoveAll(res.LogsDir)
}

// TestWaitWithoutValueIsUnknown: a wait condition whose probe never gave a value (the harness
// could not measure) is unknown, not the system's failure; one whose probe gave values that
// never met it fails.
func TestWaitWithoutValueIsUnknown(t *testing.T) {
	for sh, want := range map[string]detect.Verdict{
		"echo oops; exit 3": report.Unknown,
		"echo 0":            report.Fail,
	} {
		t.Run(sh, func(t *testing.T) {
			res := runYAML(t, `
name: wait-blind
components:
  - {name: a, command: [sleep, "600"], stop: {exit: [SIGTERM]}}
probes:
  n: {command: {sh: "`+sh+`"}}
wait:
  - {probe: n, equals: 1, timeout: 500ms}
`, 1)
			if c := check(t, res, "wait"); c.Verdict != want {
				t.Fatalf("wait %s %q %v, want %s", c.Verdict, c.Summary, c.Details, want)
			}
			os.RemoveAll(res.LogsDir)
		})
	}
}
