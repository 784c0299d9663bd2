package detect

import (
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/observe"
)

// Verdict is the outcome of one check.
type Verdict string

// Verdicts.
const (
	Pass    Verdict = "pass"
	Fail    Verdict = "fail"
	Unknown Verdict = "unknown" // the detector could not judge; Result.Summary says why
)

// Evidence describes one process (or port) behind a verdict.
type Evidence struct {
	PID       int
	StartTime uint64
	Cmdline   string
	PPIDChain []int // parents at first sight, nearest first
	PGID      int
	SID       int
	Age       time.Duration // since first sight
	State     string        // state letter at the last look
	Cookie    bool          // carries the run cookie
	Cgroup    string
	Wchan     string
	Class     string // sub-class: e.g. "contained", "escaped", "re-parented", "culprit-parent"
	Detail    string // what is wrong, in words: target diffs, which layer failed, ...
}

// Series is a named sequence of values a report can chart (e.g. fd counts per cycle).
type Series struct {
	Name   string
	Unit   string
	Labels []string // one per value, e.g. the mark names
	Values []float64
}

// Result is the verdict of one check.
type Result struct {
	Check    string // "orphans", "zombies", "stopped", "fd-growth", "memory-growth", "ports", "graceful-exit"
	Verdict  Verdict
	Summary  string // one line; for unknown, the reason
	Evidence []Evidence
	Series   []Series // optional chart data
}

func pass(check, summary string) Result { return Result{Check: check, Verdict: Pass, Summary: summary} }
func unknown(check, reason string) Result {
	return Result{Check: check, Verdict: Unknown, Summary: reason}
}

// evidenceOf fills the process fields of an Evidence.
func evidenceOf(p observe.Process, now time.Time) Evidence {
	return Evidence{
		PID:       p.PID,
		StartTime: p.StartTime,
		Cmdline:   cmdline(p.Cmdline, p.Comm),
		PPIDChain: p.PPIDChain,
		PGID:      p.PGID,
		SID:       p.SID,
		Age:       now.Sub(p.FirstSeen).Round(time.Millisecond),
		State:     string(rune(p.State)),
		Cookie:    p.Cookie,
		Cgroup:    p.Cgroup,
		Wchan:     p.Wchan,
	}
}

func cmdline(args []string, comm string) string {
	if len(args) == 0 {
		return "[" + comm + "]"
	}
	return strings.Join(args, " ")
}
