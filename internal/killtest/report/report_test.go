package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func sample() Suite {
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	return Suite{
		Command: "killtest run --seed 7 x.yaml", Started: start, Finished: start.Add(3 * time.Second),
		Scenarios: []Scenario{
			{
				Name: "bad", File: "x.yaml", Run: 1, Seed: 7, Reproduce: "killtest run --seed 7 x.yaml",
				Started: start, Duration: 7193466851, Verdict: Fail, LogsDir: "/tmp/kt",
				// Boot 100 s before the start: start time 10150 ticks is 1.5 s into the run.
				BootTime: start.Add(-100 * time.Second),
				Checks: []Check{
					{Name: "orphans", Verdict: Fail, Summary: "1 process alive <after> stop",
						Evidence: []detect.Evidence{
							{PID: 42, StartTime: 10150, Cmdline: "sleep 600 <&>", PPIDChain: []int{41, 1}, State: "S", Cookie: true, Class: "re-parented", Detail: "parent died", Age: 1234567 * time.Microsecond},
							{PID: 43, StartTime: 10160, Cmdline: "sleep 601", PPIDChain: []int{41, 7},
								Chain: []detect.ChainEntry{{PID: 41, Command: "sh -c worker"}, {PID: 7, Command: "killtest run x.yaml"}}},
						}},
					{Name: "graceful-exit", Verdict: Fail, Summary: "1 of 1 component(s) did not exit gracefully",
						Evidence: []detect.Evidence{{PID: 41, Cmdline: "worker#1", Class: "exit", Detail: "worker#1: exit code 1"}}},
					{Name: "zombies", Verdict: Pass, Summary: "none"},
					{Name: "history", Verdict: Fail, Summary: "lost 1", Details: []string{"lost 1 (allowed 0, 5.0%): 7"}},
					{Name: "fd-growth", Verdict: Fail, Summary: "grows", Series: []detect.Series{{Name: "fds pid 9", Unit: "fds", Values: []float64{3, 4, 5, 6}}}},
				},
				Events: []Event{{At: 500 * time.Millisecond, Kind: "fault", Name: "kill-mid-task", Detail: "SIGKILL | firing 1/1", PIDs: []int{41}},
					{At: 1900 * time.Millisecond, Kind: "stop", Name: "worker", Detail: "scenario end"}},
				Trees: []Tree{{At: 500 * time.Millisecond, Fault: "kill-mid-task", Firing: 1, Of: 1, Signal: "SIGKILL", Procs: []TreeProc{
					{PID: 41, PPID: 7, Command: "sh -c worker", Target: true, Ended: true, DiedAfter: 3 * time.Millisecond},
					{PID: 42, PPID: 41, Command: "sleep 600 <&>", Orphaned: true, OrphanedAfter: 120 * time.Millisecond},
					{PID: 44, PPID: 42, Command: "child of 42", Fate: "lived on"},
					{PID: 43, PPID: 41, Command: "sleep 601", Orphaned: true, OrphanedAfter: 130 * time.Millisecond, Ended: true, DiedAfter: 2 * time.Second},
				}}},
				Chart: Chart{T: []float64{0, 0.1, 0.2}, Procs: []float64{1, 2, 1}, UT: []float64{0, 1}, RSS: []float64{1 << 20, 2 << 20}, FDs: []float64{4, 5}},
			},
			{Name: "unjudged", File: "y.yaml", Run: 1, Seed: 7, Verdict: Unknown, HarnessError: "needs foo: not found"},
			{Name: "good", File: "z.yaml", Run: 1, Seed: 7, Verdict: Pass, Checks: []Check{{Name: "orphans", Verdict: Pass, Summary: "none"}}},
		},
	}
}

func TestVerdictsAndExitCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		verdicts []detect.Verdict
		cleanup  bool
		want     detect.Verdict
		code     int
	}{
		{"all pass", []detect.Verdict{Pass, Pass}, false, Pass, 0},
		{"fail wins over unknown", []detect.Verdict{Pass, Unknown, Fail}, false, Fail, 1},
		{"unknown", []detect.Verdict{Pass, Unknown}, false, Unknown, 2},
		{"cleanup failure is exit 2", []detect.Verdict{Fail}, true, Fail, 2},
		{"nothing ran is never a pass", nil, false, Unknown, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var s Suite
			for _, v := range c.verdicts {
				sc := Scenario{Verdict: v}
				if c.cleanup {
					sc.CleanupError = "survivor"
				}
				s.Scenarios = append(s.Scenarios, sc)
			}
			if s.Verdict() != c.want || s.ExitCode() != c.code {
				t.Fatalf("verdict %s exit %d, want %s %d", s.Verdict(), s.ExitCode(), c.want, c.code)
			}
		})
	}
	if v := ScenarioVerdict("", []Check{{Verdict: Pass}, {Verdict: Unknown}}); v != Unknown {
		t.Errorf("scenario verdict %s", v)
	}
	if v := ScenarioVerdict("", nil); v != Unknown {
		t.Fatalf("no check at all: %s, want unknown (nothing was judged)", v)
	}
	if v := ScenarioVerdict("boom", []Check{{Verdict: Fail}}); v != Unknown {
		t.Errorf("harness error verdict %s", v)
	}
}

func TestMarkdown(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := Markdown(&b, sample()); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"## RESULT: FAIL", "Exit code 1",
		"| bad | 1 | 7 | **FAIL** | orphans FAIL, graceful-exit FAIL, history FAIL, fd-growth FAIL | 7.19 s |",
		"### orphans: FAIL", "pid 42 (started at +1.5 s), re-parented, state S, age 1.23 s", "ppid chain 41→1", "`sleep 600 <&>`", "parent died",
		"pid 43 (started at +1.6 s), parents 41 `sh -c worker` → 7 `killtest run x.yaml`",
		"- pid 41, exit: `worker#1` — worker#1: exit code 1",
		"lost 1 (allowed 0, 5.0%): 7",
		"fds pid 9 (fds): `▁▃▅█` [3 4 5 6]",
		"Reproduce: `killtest run --seed 7 x.yaml`",
		"| 500 ms | fault | kill-mid-task | SIGKILL \\| firing 1/1 pids [41] |",
		"### Process tree at fault kill-mid-task, firing 1/1: SIGKILL at 500 ms",
		"41 sh -c worker   ← signalled, ended after 3 ms\n├─ 42 sleep 600 <&>   ← ORPHANED after 120 ms\n│  └─ 44 child of 42   ← lived on\n└─ 43 sleep 601   ← ORPHANED after 130 ms, ended after 2 s\n",
		"**The harness could not judge:** needs foo: not found",
		"processes ▁█▁",
		"Logs kept in: `/tmp/kt`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q\n%s", want, md)
		}
	}
}

func TestJSONAndJUnit(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := JSON(&b, sample()); err != nil {
		t.Fatal(err)
	}
	var j struct {
		Verdict   string `json:"verdict"`
		ExitCode  int    `json:"exit_code"`
		Scenarios []Scenario
	}
	if err := json.Unmarshal(b.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	if j.Verdict != "fail" || j.ExitCode != 1 || len(j.Scenarios) != 3 || j.Scenarios[0].Checks[0].Evidence[0].PID != 42 {
		t.Fatalf("json round trip: %+v", j)
	}
	b.Reset()
	if err := JUnit(&b, sample()); err != nil {
		t.Fatal(err)
	}
	var x junitSuites
	if err := xml.Unmarshal(b.Bytes(), &x); err != nil {
		t.Fatalf("junit is not XML: %v\n%s", err, b.String())
	}
	if x.Tests != 7 || x.Failures != 4 || x.Errors != 1 || len(x.Suites) != 3 {
		t.Fatalf("junit counts tests %d failures %d errors %d suites %d", x.Tests, x.Failures, x.Errors, len(x.Suites))
	}
	if f := x.Suites[0].Cases[0].Failure; f == nil || !strings.Contains(f.Body, "sleep 600 <&>") || !strings.Contains(f.Body, "started at +1.5 s") {
		t.Fatalf("failure body %+v", f)
	}
	if x.Suites[0].Time != 7.193 {
		t.Errorf("junit time %v, want 7.193 (seconds to the millisecond)", x.Suites[0].Time)
	}
}

func TestHTML(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := HTML(&b, sample()); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	if n := strings.Count(h, `aria-label="process tree`); n != 1 {
		t.Errorf("want 1 process tree, got %d", n)
	}
	if n := strings.Count(h, "over time\""); n != 3 {
		t.Errorf("want 3 charts, got %d", n)
	}
	for _, want := range []string{
		"sleep 600 &lt;&amp;&gt;",            // escaped
		`class="m-fault"`, `class="l-fault"`, // fault marked on the charts...
		">kill-mid-task<title>",             // ...and named
		`class="l-stop">stop worker<title>`, // stop markers named too
		"time since the scenario started",   // time axis
		">0 s</text>", ">6 s</text>",        // with labels
		">2.0 MiB</text>", // value axis labels
		"<td>7.19 s</td>", // durations as people write them
		"<td>500 ms</td>",
		`class="n-target"`, `class="t-orphaned"`, // tree: signalled and orphaned processes
		"43 sleep 601  ← ORPHANED after 130 ms, ended after 2 s",
		`d="M14,16 V36 H36"`, // an edge from 41 to its child 42
		"parents 41 `sh -c worker` → 7 `killtest run x.yaml`",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	for _, ext := range []string{"src=", "<link", "@import", "url("} {
		if strings.Contains(h, ext) {
			t.Errorf("external asset %q in the page", ext)
		}
	}
	if strings.Contains(h, "7.193466851s") {
		t.Error("a raw Go duration in the page")
	}
}

func TestNiceStep(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ span, want float64 }{{7.2, 2}, {60, 10}, {0.5, 0.1}, {300, 50}, {1, 0.2}} {
		if got := niceStep(c.span, 6); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("niceStep(%v) = %v, want %v", c.span, got, c.want)
		}
	}
}

func TestSparkline(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in    []float64
		width int
		want  string
	}{
		{nil, 10, ""},
		{[]float64{5, 5, 5}, 10, "▁▁▁"},
		{[]float64{0, 7}, 10, "▁█"},
		{[]float64{0, 1, 0, 9, 0, 0}, 3, "▁█▁"}, // the spike survives resampling
	}
	for _, c := range cases {
		if got := Sparkline(c.in, c.width); got != c.want {
			t.Errorf("Sparkline(%v, %d) = %q, want %q", c.in, c.width, got, c.want)
		}
	}
}
