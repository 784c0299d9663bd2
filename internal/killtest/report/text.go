package report

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
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

func fmtDur(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

func fmtBytes(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

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

func evidenceLine(e detect.Evidence) string {
	var parts []string
	if e.PID != 0 {
		parts = append(parts, fmt.Sprintf("pid %d (start %d)", e.PID, e.StartTime))
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
	if len(e.PPIDChain) > 0 {
		ch := make([]string, len(e.PPIDChain))
		for i, p := range e.PPIDChain {
			ch[i] = fmt.Sprint(p)
		}
		parts = append(parts, "ppid chain "+strings.Join(ch, "→"))
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
