package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// maxEvidence bounds the evidence lines printed per check (the JSON has all of them).
const maxEvidence = 20

// Markdown writes stress_test_results.md.
func Markdown(w io.Writer, s Suite) error {
	b := bufio.NewWriter(w)
	p, f, u := s.Counts()
	fmt.Fprintf(b, "# killtest results\n\n")
	fmt.Fprintf(b, "## RESULT: %s\n\n", verdictWord(s.Verdict()))
	fmt.Fprintf(b, "%d scenario runs: %d passed, %d failed, %d unknown. Exit code %d.\n\n", len(s.Scenarios), p, f, u, s.ExitCode())
	fmt.Fprintf(b, "- Command: `%s`\n- Started: %s\n- Took: %s\n\n", s.Command, s.Started.UTC().Format("2006-01-02 15:04:05 UTC"), fmtDur(s.Finished.Sub(s.Started)))
	fmt.Fprintf(b, "| scenario | run | seed | verdict | failed checks | took |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, sc := range s.Scenarios {
		var failed []string
		for _, c := range sc.Checks {
			if c.Verdict != Pass {
				failed = append(failed, c.Name+" "+verdictWord(c.Verdict))
			}
		}
		fmt.Fprintf(b, "| %s | %d | %d | **%s** | %s | %s |\n", sc.Name, sc.Run, sc.Seed, verdictWord(sc.Verdict), strings.Join(failed, ", "), fmtDur(sc.Duration))
	}
	for _, sc := range s.Scenarios {
		writeScenario(b, sc)
	}
	return b.Flush()
}

// writeScenario writes one scenario run's section: its header, the checks table, the evidence of
// the checks that did not pass, the timeline, the fault trees and the resource sparklines.
func writeScenario(b *bufio.Writer, sc Scenario) {
	writeScenarioHeader(b, sc)
	writeChecks(b, sc)
	writeTimeline(b, sc.Events)
	for _, t := range sc.Trees {
		fmt.Fprintf(b, "\n### Process tree at fault %s\n\n```\n%s```\n", t.title(), textTree(t))
	}
	writeResources(b, sc.Chart)
}

// writeScenarioHeader writes the title, the description, the run's facts and notes, and what the
// harness could not do.
func writeScenarioHeader(b *bufio.Writer, sc Scenario) {
	fmt.Fprintf(b, "\n## %s (run %d): %s\n\n", sc.Name, sc.Run, verdictWord(sc.Verdict))
	if sc.Description != "" {
		fmt.Fprintf(b, "%s\n\n", strings.TrimSpace(sc.Description))
	}
	fmt.Fprintf(b, "- File: `%s`\n- Seed: %d\n- Reproduce: `%s`\n- Took: %s\n", sc.File, sc.Seed, sc.Reproduce, fmtDur(sc.Duration))
	if sc.LogsDir != "" {
		fmt.Fprintf(b, "- Logs kept in: `%s`\n", sc.LogsDir)
	}
	if sc.Samples != "" {
		fmt.Fprintf(b, "- Per-process fd and memory samples: `%s`\n", sc.Samples)
	}
	for _, n := range sc.Notes {
		fmt.Fprintf(b, "- Note: %s\n", n)
	}
	if sc.HarnessError != "" {
		fmt.Fprintf(b, "\n**The harness could not judge:** %s\n", sc.HarnessError)
	}
	if sc.CleanupError != "" {
		fmt.Fprintf(b, "\n**The harness could not clean up (exit 2):** %s\n", sc.CleanupError)
	}
}

// writeChecks writes the checks table, then a section per check that did not pass and has
// something to show.
func writeChecks(b *bufio.Writer, sc Scenario) {
	if len(sc.Checks) > 0 {
		fmt.Fprintf(b, "\n| check | verdict | summary |\n| --- | --- | --- |\n")
		for _, c := range sc.Checks {
			fmt.Fprintf(b, "| %s | %s | %s |\n", c.Name, verdictWord(c.Verdict), strings.ReplaceAll(c.Summary, "|", "\\|"))
		}
	}
	for _, c := range sc.Checks {
		if c.Verdict == Pass || (len(c.Evidence) == 0 && len(c.Details) == 0 && len(c.Series) == 0) {
			continue
		}
		writeCheckEvidence(b, c, clockOf(sc))
	}
}

// writeCheckEvidence writes one check's evidence and details (maxEvidence lines at most) and its
// series as sparklines.
func writeCheckEvidence(b *bufio.Writer, c Check, clock clock) {
	fmt.Fprintf(b, "\n### %s: %s\n\n%s\n\n", c.Name, verdictWord(c.Verdict), c.Summary)
	n := 0
	for _, e := range c.Evidence {
		if n == maxEvidence {
			fmt.Fprintf(b, "- … %d more in the JSON report\n", len(c.Evidence)+len(c.Details)-n)
			break
		}
		fmt.Fprintf(b, "- %s\n", evidenceLine(e, clock))
		n++
	}
	for _, d := range c.Details {
		if n >= maxEvidence {
			break
		}
		fmt.Fprintf(b, "- %s\n", d)
		n++
	}
	for _, se := range c.Series {
		fmt.Fprintf(b, "- %s (%s): `%s` %v\n", se.Name, se.Unit, Sparkline(se.Values, 60), se.Values)
	}
}

// writeTimeline writes the run's events as a table.
func writeTimeline(b *bufio.Writer, events []Event) {
	if len(events) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### Timeline\n\n| t | event | what | detail |\n| --- | --- | --- | --- |\n")
	for _, e := range events {
		d := e.Detail
		if len(e.PIDs) > 0 {
			d = strings.TrimSpace(fmt.Sprintf("%s pids %v", d, e.PIDs))
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", fmtDur(e.At), e.Kind, e.Name, strings.ReplaceAll(d, "|", "\\|"))
	}
}

// writeResources writes the process count, RSS and fd sparklines.
func writeResources(b *bufio.Writer, ch Chart) {
	if len(ch.T) == 0 {
		return
	}
	lo, hi := minMax(ch.Procs)
	fmt.Fprintf(b, "\n### Resources\n\n```\nprocesses %s  %.0f..%.0f\n", Sparkline(ch.Procs, 60), lo, hi)
	if len(ch.UT) > 0 {
		lo, hi = minMax(ch.RSS)
		fmt.Fprintf(b, "rss       %s  %s..%s\n", Sparkline(ch.RSS, 60), fmtBytes(lo), fmtBytes(hi))
		lo, hi = minMax(ch.FDs)
		fmt.Fprintf(b, "fds       %s  %.0f..%.0f\n", Sparkline(ch.FDs, 60), lo, hi)
	}
	fmt.Fprintf(b, "```\n")
}
