package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxyline/proxyline/internal/killtest/detect"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sample() Suite {
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	return Suite{
		Command: "killtest run --seed 7 x.yaml", Started: start, Finished: start.Add(3 * time.Second),
		Scenarios: []Scenario{
			{
				Name: "bad", File: "x.yaml", Run: 1, Seed: 7, Reproduce: "killtest run --seed 7 x.yaml",
				Started: start, Duration: 2 * time.Second, Verdict: Fail, LogsDir: "/tmp/kt",
				Checks: []Check{
					{Name: "orphans", Verdict: Fail, Summary: "1 process alive <after> stop",
						Evidence: []detect.Evidence{{PID: 42, StartTime: 99, Cmdline: "sleep 600 <&>", PPIDChain: []int{41, 1}, State: "S", Cookie: true, Class: "re-parented", Detail: "parent died"}}},
					{Name: "zombies", Verdict: Pass, Summary: "none"},
					{Name: "history", Verdict: Fail, Summary: "lost 1", Details: []string{"lost 1 (allowed 0, 5.0%): 7"}},
					{Name: "fd-growth", Verdict: Fail, Summary: "grows", Series: []detect.Series{{Name: "fds pid 9", Unit: "fds", Values: []float64{3, 4, 5, 6}}}},
				},
				Events: []Event{{At: 500 * time.Millisecond, Kind: "fault", Name: "kill-mid-task", Detail: "SIGKILL | firing 1/1", PIDs: []int{41}}},
				Chart:  Chart{T: []float64{0, 0.1, 0.2}, Procs: []float64{1, 2, 1}, UT: []float64{0, 1}, RSS: []float64{1 << 20, 2 << 20}, FDs: []float64{4, 5}},
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
		{"nothing ran", nil, false, Pass, 0},
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
		"| bad | 1 | 7 | **FAIL** | orphans FAIL, history FAIL, fd-growth FAIL |",
		"### orphans: FAIL", "pid 42 (start 99), re-parented, state S", "ppid chain 41→1", "`sleep 600 <&>`", "parent died",
		"lost 1 (allowed 0, 5.0%): 7",
		"fds pid 9 (fds): `▁▃▅█` [3 4 5 6]",
		"Reproduce: `killtest run --seed 7 x.yaml`",
		"| 500ms | fault | kill-mid-task | SIGKILL \\| firing 1/1 pids [41] |",
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
	if x.Tests != 6 || x.Failures != 3 || x.Errors != 1 || len(x.Suites) != 3 {
		t.Fatalf("junit counts tests %d failures %d errors %d suites %d", x.Tests, x.Failures, x.Errors, len(x.Suites))
	}
	if f := x.Suites[0].Cases[0].Failure; f == nil || !strings.Contains(f.Body, "sleep 600 <&>") {
		t.Fatalf("failure body %+v", f)
	}
}

func TestHTML(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := HTML(&b, sample()); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	if strings.Count(h, "<svg") != 3 {
		t.Errorf("want 3 charts, got %d", strings.Count(h, "<svg"))
	}
	if !strings.Contains(h, "sleep 600 &lt;&amp;&gt;") {
		t.Error("evidence not escaped")
	}
	if !strings.Contains(h, `class="fault"`) {
		t.Error("fault not marked on the charts")
	}
	for _, ext := range []string{"src=", "<link", "@import", "url("} {
		if strings.Contains(h, ext) {
			t.Errorf("external asset %q in the page", ext)
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
