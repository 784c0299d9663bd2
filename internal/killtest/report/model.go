// Package report writes killtest's results: stress_test_results.md (the human report: verdicts,
// evidence for every failure, fault timeline, sparklines, how to reproduce), JSON (the same
// model), JUnit XML (for CI systems) and one self-contained HTML page with inline SVG charts of
// processes, RSS and fds over time with the faults marked. The model is filled by package run.
package report

import (
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
)

// Verdicts, re-exported from detect so users of the model need one import.
const (
	Pass    = detect.Pass
	Fail    = detect.Fail
	Unknown = detect.Unknown
)

// Suite is one invocation of killtest run.
type Suite struct {
	Command   string     `json:"command"` // the command line, for the record
	Started   time.Time  `json:"started"`
	Finished  time.Time  `json:"finished"`
	Scenarios []Scenario `json:"scenarios"`
}

// Scenario is one run of one scenario.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	File        string `json:"file"`
	// Run is the 1-based repetition (--runs).
	Run  int   `json:"run"`
	Seed int64 `json:"seed"`
	// Reproduce is the exact command that repeats this run.
	Reproduce string         `json:"reproduce"`
	Started   time.Time      `json:"started"`
	Duration  time.Duration  `json:"duration_ns"`
	Verdict   detect.Verdict `json:"verdict"`
	// HarnessError says why the harness could not judge (missing program, bad setup); the
	// verdict is then unknown.
	HarnessError string `json:"harness_error,omitempty"`
	// CleanupError is set when the harness could not remove everything it started (exit 2).
	CleanupError string `json:"cleanup_error,omitempty"`
	// Notes are facts about the environment (cgroup, subreaper) that qualify the verdicts.
	Notes  []string `json:"notes,omitempty"`
	Checks []Check  `json:"checks"`
	Events []Event  `json:"events"`
	// Trees are the process trees at the moments faults fired.
	Trees   []Tree `json:"fault_trees,omitempty"`
	Chart   Chart  `json:"chart"`
	LogsDir string `json:"logs_dir,omitempty"`
	// Samples is the CSV file of per-process fd and memory samples, when written.
	Samples string `json:"samples,omitempty"`
	// BootTime is when the machine booted, to turn process start times (clock ticks since boot,
	// Evidence.StartTime) into times of the run. Zero when unknown.
	BootTime time.Time `json:"boot_time,omitzero"`
}

// Check is one check's verdict in a scenario.
type Check struct {
	Name     string            `json:"name"`
	Verdict  detect.Verdict    `json:"verdict"`
	Summary  string            `json:"summary"`
	Evidence []detect.Evidence `json:"evidence,omitempty"`
	// Details are evidence lines that are not processes (ids, probe values, exit statuses).
	Details []string        `json:"details,omitempty"`
	Series  []detect.Series `json:"series,omitempty"`
}

// Event is one entry of the fault timeline.
type Event struct {
	At     time.Duration `json:"at_ns"` // since the scenario started
	Kind   string        `json:"kind"`  // start, ready, step, fault, restart, stop, mark, wait, error
	Name   string        `json:"name"`
	Detail string        `json:"detail,omitempty"`
	PIDs   []int         `json:"pids,omitempty"`
}

// Chart is the data of the charts: 10 Hz process counts and 1 Hz totals over the attributed
// processes, times in seconds since the scenario started.
type Chart struct {
	T     []float64 `json:"t"`
	Procs []float64 `json:"procs"`
	UT    []float64 `json:"ut"`
	RSS   []float64 `json:"rss_bytes"`
	FDs   []float64 `json:"fds"`
}

// Verdict of a scenario from its checks: unknown on a harness error or when no check ran
// (nothing was judged: never a pass), else fail if any check failed, else unknown if any check
// could not judge, else pass.
func ScenarioVerdict(harnessErr string, checks []Check) detect.Verdict {
	if harnessErr != "" || len(checks) == 0 {
		return Unknown
	}
	v := Pass
	for _, c := range checks {
		switch c.Verdict {
		case Fail:
			return Fail
		case Unknown:
			v = Unknown
		}
	}
	return v
}

// Verdict of the suite: fail if any scenario failed, else unknown if any could not be judged or
// none ran, else pass.
func (s Suite) Verdict() detect.Verdict {
	if len(s.Scenarios) == 0 {
		return Unknown
	}
	v := Pass
	for _, sc := range s.Scenarios {
		switch sc.Verdict {
		case Fail:
			v = Fail
		case Unknown:
			if v != Fail {
				v = Unknown
			}
		}
	}
	return v
}

// ExitCode maps the suite to killtest's exit codes: 0 all pass, 1 the system failed a check,
// 2 the harness could not judge — and always 2 when the harness could not clean up after itself.
func (s Suite) ExitCode() int {
	for _, sc := range s.Scenarios {
		if sc.CleanupError != "" {
			return 2
		}
	}
	switch s.Verdict() {
	case Pass:
		return 0
	case Fail:
		return 1
	}
	return 2
}

// Counts returns how many scenarios passed, failed and are unknown.
func (s Suite) Counts() (pass, fail, unknown int) {
	for _, sc := range s.Scenarios {
		switch sc.Verdict {
		case Pass:
			pass++
		case Fail:
			fail++
		default:
			unknown++
		}
	}
	return
}
