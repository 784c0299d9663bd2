package detect

import (
	"fmt"
	"slices"
	"time"
)

// Exit is how one component ended when the runner stopped it.
type Exit struct {
	Component string
	PID       int
	// Code is the exit code; for a death by signal use 128+signal number (the shell's
	// convention) and set Signal.
	Code   int
	Signal string // e.g. "SIGKILL" when a signal ended it, "" otherwise
	// Escalated is true when the runner had to send SIGKILL after the stop signal's grace.
	Escalated bool
	Elapsed   time.Duration // from the stop request to the exit
	Deadline  time.Duration // allowed; zero means no time limit
	// ExpectedCodes are the exit codes that count as graceful. Default {0}.
	ExpectedCodes []int
}

// GracefulExit is the graceful-exit detector, a pure function of what the runner measured:
// every component must exit by itself (no SIGKILL escalation), within its deadline, with an
// expected exit code.
func GracefulExit(exits []Exit) Result {
	const check = "graceful-exit"
	if len(exits) == 0 {
		return unknown(check, "no component exit was recorded")
	}
	res := Result{Check: check}
	for _, e := range exits {
		want := e.ExpectedCodes
		if len(want) == 0 {
			want = []int{0}
		}
		var why string
		switch {
		case e.Escalated:
			why = fmt.Sprintf("did not exit within the stop grace; killed after %s", hd(e.Elapsed))
		case e.Deadline > 0 && e.Elapsed > e.Deadline:
			why = fmt.Sprintf("took %s to exit, deadline %s", hd(e.Elapsed), hd(e.Deadline))
		case !slices.Contains(want, e.Code):
			why = fmt.Sprintf("exit code %d, want one of %v", e.Code, want)
			if e.Signal != "" {
				why = fmt.Sprintf("ended by %s (code %d), want exit code one of %v", e.Signal, e.Code, want)
			}
		default:
			continue
		}
		res.Evidence = append(res.Evidence, Evidence{PID: e.PID, Cmdline: e.Component, Class: "exit", Detail: e.Component + ": " + why})
	}
	if len(res.Evidence) == 0 {
		return pass(check, fmt.Sprintf("%d component(s) exited in time with an expected code", len(exits)))
	}
	res.Verdict = Fail
	res.Summary = fmt.Sprintf("%d of %d component(s) did not exit gracefully", len(res.Evidence), len(exits))
	return res
}
