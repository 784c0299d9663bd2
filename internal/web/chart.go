package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/api"
)

// The latency chart's geometry, in SVG user units.
const (
	chartW, chartH                      = 800, 240
	padLeft, padRight, padTop, padBelow = 64, 16, 14, 34
)

// latencyChart draws a proxy's history as an inline SVG: total latency of each live check over
// time (a line through dots), each failed check a cross on the time axis. It writes only numbers
// and text it formats itself (the address is escaped), so the page may embed it as HTML.
func latencyChart(addr string, history []api.Check) template.HTML {
	var b strings.Builder
	live, failed := 0, 0
	for _, c := range history {
		if c.Class == "alive" {
			live++
		} else {
			failed++
		}
	}
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="chart-title chart-desc">`, chartW, chartH)
	fmt.Fprintf(&b, `<title id="chart-title">Latency of %s</title>`, html.EscapeString(addr))
	fmt.Fprintf(&b, `<desc id="chart-desc">%d live checks (dots, latency in milliseconds) and %d failed checks (crosses) over time.</desc>`, live, failed)
	if len(history) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d">No check recorded.</text></svg>`, chartW/2-50, chartH/2)
		return template.HTML(b.String())
	}
	lo, hi := history[len(history)-1].CheckedAt, history[0].CheckedAt // newest first
	if !hi.After(lo) {
		lo, hi = lo.Add(-time.Minute), hi.Add(time.Minute)
	}
	top := niceCeil(maxLatency(history))
	x := func(t time.Time) float64 {
		return padLeft + float64(t.Sub(lo))/float64(hi.Sub(lo))*(chartW-padLeft-padRight)
	}
	y := func(ms int64) float64 {
		return chartH - padBelow - float64(ms)/top*(chartH-padTop-padBelow)
	}
	axes(&b, lo, hi, top, y)
	var pts []string
	for i := len(history) - 1; i >= 0; i-- { // oldest first, so the line runs left to right
		c := history[i]
		if c.Class == "alive" {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(c.CheckedAt), y(c.TotalMS)))
		}
	}
	if len(pts) > 1 {
		fmt.Fprintf(&b, `<polyline class="line" points="%s"/>`, strings.Join(pts, " "))
	}
	for _, c := range history {
		px := x(c.CheckedAt)
		when := c.CheckedAt.UTC().Format("2006-01-02 15:04:05")
		if c.Class == "alive" {
			fmt.Fprintf(&b, `<circle class="point" cx="%.1f" cy="%.1f" r="3"><title>%s: %d ms</title></circle>`, px, y(c.TotalMS), when, c.TotalMS)
			continue
		}
		py := float64(chartH - padBelow)
		fmt.Fprintf(&b, `<g class="fail"><title>%s: %s</title><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/></g>`,
			when, html.EscapeString(c.Class), px-4, py-4, px+4, py+4, px-4, py+4, px+4, py-4)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// axes draws the grid (round latency levels), the axes and the time labels.
func axes(b *strings.Builder, lo, hi time.Time, top float64, y func(int64) float64) {
	steps := 5 // top is 1 or 5 times a power of ten: tenths or fifths are round
	if lead := top / math.Pow(10, math.Floor(math.Log10(top))); lead == 2 {
		steps = 4
	}
	for i := 0; i <= steps; i++ {
		ms := int64(math.Round(top * float64(i) / float64(steps)))
		yy := y(ms)
		fmt.Fprintf(b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, padLeft, yy, chartW-padRight, yy)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%d ms</text>`, padLeft-6, yy+4, ms)
	}
	fmt.Fprintf(b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padLeft, chartH-padBelow, chartW-padRight, chartH-padBelow)
	fmt.Fprintf(b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padLeft, padTop, padLeft, chartH-padBelow)
	layout := "2006-01-02 15:04"
	if hi.Sub(lo) < 24*time.Hour {
		layout = "15:04:05"
	}
	fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`, padLeft, chartH-10, lo.UTC().Format(layout))
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s UTC</text>`, chartW-padRight, chartH-10, hi.UTC().Format(layout))
}

func maxLatency(history []api.Check) int64 {
	var m int64
	for _, c := range history {
		if c.Class == "alive" && c.TotalMS > m {
			m = c.TotalMS
		}
	}
	return m
}

// niceCeil rounds ms up to 1, 2 or 5 times a power of ten (at least 10 ms).
func niceCeil(ms int64) float64 {
	v := math.Max(float64(ms), 10)
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
