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

	// Chain is the parent chain at first sight with each ancestor's command, nearest first,
	// when known; reports show it instead of the bare PPIDChain.
	Chain []ChainEntry `json:",omitempty"`
	// WithoutParentMin and WithoutParentMax bound how long an orphan ran without its parent
	// (orphaned during the run): at least Min, at most Max.
	WithoutParentMin time.Duration `json:",omitempty"`
	WithoutParentMax time.Duration `json:",omitempty"`
	// Ended says what ended an orphan: itself (with its status), a signal of the harness (which),
	// right after a sibling component stopped, or nothing yet (left behind).
	Ended string `json:",omitempty"`
}

// ChainEntry is one ancestor in a parent chain.
type ChainEntry struct {
	PID       int
	StartTime uint64 // 0 when unknown
	Command   string // its command line; "" when unknown
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
		Chain:     chainOf(p),
	}
}

// chainOf is p's parent chain at first sight with each ancestor's identity and command, as the
// observer recorded them (nil when it recorded none).
func chainOf(p observe.Process) []ChainEntry {
	if len(p.Ancestors) == 0 {
		return nil
	}
	out := make([]ChainEntry, len(p.Ancestors))
	for i, a := range p.Ancestors {
		out[i] = ChainEntry{PID: a.PID, StartTime: a.StartTime, Command: a.Command()}
	}
	return out
}

func cmdline(args []string, comm string) string {
	if len(args) == 0 {
		return "[" + comm + "]"
	}
	return strings.Join(args, " ")
}
