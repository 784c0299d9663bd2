package report

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
	"github.com/proxyline/proxyline/internal/killtest/human"
	"github.com/proxyline/proxyline/internal/proctab"
)

// Sparkline draws values with ▁▂▃▄▅▆▇█, resampled to at most width points (by maximum per bucket,
// so spikes stay visible).
func Sparkline(values []float64, width int) string {
	if len(values) == 0 {
		return ""
	}
	if width <= 0 {
		width = 60
	}
	vs := values
	if len(vs) > width {
		vs = make([]float64, width)
		for i := range vs {
			lo, hi := i*len(values)/width, (i+1)*len(values)/width
			m := values[lo]
			for _, v := range values[lo:hi] {
				m = math.Max(m, v)
			}
			vs[i] = m
		}
	}
	lo, hi := vs[0], vs[0]
	for _, v := range vs {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	bars := []rune("▁▂▃▄▅▆▇█")
	var b strings.Builder
	for _, v := range vs {
		i := 0
		if hi > lo {
			i = int((v - lo) / (hi - lo) * float64(len(bars)-1))
		}
		b.WriteRune(bars[i])
	}
	return b.String()
}

func verdictWord(v detect.Verdict) string {
	switch v {
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	}
	return "UNKNOWN"
}

// fmtDur is the one way durations are written in the reports.
func fmtDur(d time.Duration) string { return human.Duration(d) }

func fmtBytes(b float64) string { return human.Bytes(b) }

func minMax(vs []float64) (float64, float64) {
	if len(vs) == 0 {
		return 0, 0
	}
	lo, hi := vs[0], vs[0]
	for _, v := range vs {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}

// clock turns process start times (clock ticks since boot) into times of the run.
type clock struct {
	boot  time.Time // zero: unknown
	start time.Time // the scenario's start
}

func clockOf(sc Scenario) clock { return clock{boot: sc.BootTime, start: sc.Started} }

// started describes a process start time: "started at +1.2 s" (into the run), or "started
// 3.4 s before the run", or the raw clock ticks when the boot time is unknown.
func (c clock) started(ticks uint64) string {
	if c.boot.IsZero() || c.start.IsZero() {
		return fmt.Sprintf("start %d ticks", ticks)
	}
	at := c.boot.Add(proctab.TicksToDuration(ticks)).Sub(c.start)
	if at < 0 {
		return "started " + fmtDur(-at) + " before the run"
	}
	return "started at +" + fmtDur(at)
}

// chainText writes a parent chain, nearest first: with each ancestor's command when known.
func chainText(e detect.Evidence) string {
	if len(e.Chain) > 0 {
		parts := make([]string, len(e.Chain))
		for i, a := range e.Chain {
			parts[i] = fmt.Sprint(a.PID)
			if a.Command != "" {
				parts[i] += " `" + clipText(strings.ReplaceAll(a.Command, "`", "'"), 80) + "`"
			}
		}
		return "parents " + strings.Join(parts, " → ")
	}
	ch := make([]string, len(e.PPIDChain))
	for i, p := range e.PPIDChain {
		ch[i] = fmt.Sprint(p)
	}
	return "ppid chain " + strings.Join(ch, "→")
}

func evidenceLine(e detect.Evidence, c clock) string {
	var parts []string
	switch {
	case e.PID != 0 && e.StartTime != 0:
		parts = append(parts, fmt.Sprintf("pid %d (%s)", e.PID, c.started(e.StartTime)))
	case e.PID != 0:
		parts = append(parts, fmt.Sprintf("pid %d", e.PID))
	}
	if e.Class != "" {
		parts = append(parts, e.Class)
	}
	if e.State != "" {
		parts = append(parts, "state "+e.State)
	}
	if e.Age > 0 {
		parts = append(parts, "age "+fmtDur(e.Age))
	}
	if len(e.Chain) > 0 || len(e.PPIDChain) > 0 {
		parts = append(parts, chainText(e))
	}
	if e.PGID != 0 {
		parts = append(parts, fmt.Sprintf("pgid %d sid %d", e.PGID, e.SID))
	}
	if e.Cookie {
		parts = append(parts, "cookie")
	}
	if e.Cgroup != "" {
		parts = append(parts, "cgroup "+e.Cgroup)
	}
	if e.Wchan != "" {
		parts = append(parts, "wchan "+e.Wchan)
	}
	s := strings.Join(parts, ", ")
	if e.Cmdline != "" {
		s += ": `" + strings.ReplaceAll(e.Cmdline, "`", "'") + "`"
	}
	if e.Detail != "" {
		s += " — " + e.Detail
	}
	return s
}
