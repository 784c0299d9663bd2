package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// Chart geometry: the SVG box and the plot area inside it (margins for the axes' labels and the
// named markers above the plot).
const (
	chartW, chartH                           = 760, 210
	plotLeft, plotRight, plotTop, plotBottom = 70, 14, 40, 34
)

// chartView is one SVG chart, precomputed so the template only places numbers and escaped text.
type chartView struct {
	Title  string
	W, H   int
	X0, X1 float64 // plot box
	Y0, Y1 float64
	TickY  float64 // lower end of the time axis's tick marks
	Points string  // "x,y x,y ..."
	YTicks []tickView
	XTicks []tickView
	Marks  []markView
}

type tickView struct {
	Pos   float64
	Label string
}

type markView struct {
	X      float64
	LabelY float64 // the label's baseline, staggered so close markers stay readable
	Label  string
	Kind   string // fault, restart, stop
	Color  string
	Title  string // tooltip: kind, name, time, detail
}

// markColors are the markers' colours by event kind (presentation attributes, not CSS classes,
// so an SVG copied out of the page still draws right).
var markColors = map[string]string{"fault": "#b00020", "restart": "#1f5fbf", "stop": "#777777"}

// nodeColors are the tree nodes' colours by fate.
var nodeColors = map[string]string{"target": "#b00020", "orphaned": "#e07000", "ended": "#aaaaaa", "alive": "#1f5fbf"}

// treeView is one process tree drawn as SVG.
type treeView struct {
	Title string
	W, H  int
	Rows  []treeRowView
}

type treeRowView struct {
	X, Y       float64
	EdgeX      float64 // parent's x; 0 for a root
	EdgeY      float64 // parent's y
	Text, Fate string
	Class      string // target, orphaned, ended, alive
	Color      string // the node's
	TextColor  string
	Bold       bool
}

type scenarioView struct {
	Scenario
	VerdictWord string
	Took        string
	Charts      []chartView
	Trees       []treeView
	All         []checkView
	Events      []eventView
}

type eventView struct {
	Event
	T string
}

type checkView struct {
	Check
	VerdictWord string
	Lines       []string
}

// niceStep is a round tick step (1, 2 or 5 × 10^k) giving about n ticks over span.
func niceStep(span float64, n int) float64 {
	raw := span / float64(n)
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func buildChart(title string, t, v []float64, span float64, events []Event, label func(float64) string) chartView {
	cv := chartView{Title: title, W: chartW, H: chartH, X0: plotLeft, X1: chartW - plotRight, Y0: plotTop, Y1: chartH - plotBottom, TickY: chartH - plotBottom + 5}
	x := func(s float64) float64 { return cv.X0 + s/span*(cv.X1-cv.X0) }
	lo, hi := minMax(v)
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		hi = lo + 1
	}
	y := func(val float64) float64 { return cv.Y1 - (val-lo)/(hi-lo)*(cv.Y1-cv.Y0) }
	pts := make([]string, len(v))
	for i := range v {
		pts[i] = fmt.Sprintf("%.1f,%.1f", x(t[i]), y(v[i]))
	}
	cv.Points = strings.Join(pts, " ")
	for _, f := range []float64{lo, (lo + hi) / 2, hi} {
		cv.YTicks = append(cv.YTicks, tickView{Pos: y(f), Label: label(f)})
	}
	step := niceStep(span, 6)
	for s := 0.0; s <= span+step/1000; s += step {
		cv.XTicks = append(cv.XTicks, tickView{Pos: x(s), Label: fmtDur(time.Duration(s * float64(time.Second)))})
	}
	var lastX [3]float64
	for i := range lastX {
		lastX[i] = math.Inf(-1)
	}
	for _, e := range events {
		if e.Kind != "fault" && e.Kind != "restart" && e.Kind != "stop" {
			continue
		}
		label := e.Name
		if e.Kind != "fault" {
			label = e.Kind + " " + e.Name
		}
		m := markView{X: x(e.At.Seconds()), Label: label, Kind: e.Kind, Color: markColors[e.Kind],
			Title: fmt.Sprintf("%s %s at %s: %s", e.Kind, e.Name, fmtDur(e.At), e.Detail)}
		row := 0
		for row < len(lastX)-1 && m.X-lastX[row] < 110 {
			row++
		}
		lastX[row] = m.X
		m.LabelY = 11 + float64(row)*10
		cv.Marks = append(cv.Marks, m)
	}
	return cv
}

func buildTree(t Tree) treeView {
	rows := layout(t)
	if len(rows) > maxTreeRows {
		rows = rows[:maxTreeRows]
	}
	tv := treeView{Title: t.title(), W: 900, H: 20*len(rows) + 12}
	for i, r := range rows {
		rv := treeRowView{X: 14 + float64(r.Depth)*22, Y: 16 + float64(i)*20,
			Text: fmt.Sprintf("%d %s", r.PID, clipText(r.Command, 80)), Fate: r.fateWords()}
		if r.Parent >= 0 {
			rv.EdgeX, rv.EdgeY = tv.Rows[r.Parent].X, tv.Rows[r.Parent].Y
		}
		switch {
		case r.Orphaned:
			rv.Class = "orphaned"
		case r.Target:
			rv.Class = "target"
		case r.Ended:
			rv.Class = "ended"
		default:
			rv.Class = "alive"
		}
		rv.Color, rv.TextColor, rv.Bold = nodeColors[rv.Class], "#222222", rv.Class == "orphaned"
		switch rv.Class {
		case "orphaned":
			rv.TextColor = "#b35900"
		case "ended":
			rv.TextColor = "#777777"
		}
		tv.Rows = append(tv.Rows, rv)
	}
	return tv
}

func viewOf(sc Scenario) scenarioView {
	v := scenarioView{Scenario: sc, VerdictWord: verdictWord(sc.Verdict), Took: fmtDur(sc.Duration)}
	span := sc.Duration.Seconds()
	for _, x := range append(append([]float64(nil), sc.Chart.T...), sc.Chart.UT...) {
		span = max(span, x)
	}
	if span <= 0 {
		span = 1
	}
	num := func(f float64) string { return fmt.Sprintf("%.0f", f) }
	if len(sc.Chart.T) > 0 {
		v.Charts = append(v.Charts, buildChart("attributed processes", sc.Chart.T, sc.Chart.Procs, span, sc.Events, num))
	}
	if len(sc.Chart.UT) > 0 {
		v.Charts = append(v.Charts, buildChart("RSS (sum over attributed processes)", sc.Chart.UT, sc.Chart.RSS, span, sc.Events, fmtBytes))
		v.Charts = append(v.Charts, buildChart("open fds (sum)", sc.Chart.UT, sc.Chart.FDs, span, sc.Events, num))
	}
	for _, t := range sc.Trees {
		v.Trees = append(v.Trees, buildTree(t))
	}
	for _, c := range sc.Checks {
		cv := checkView{Check: c, VerdictWord: verdictWord(c.Verdict)}
		for _, e := range c.Evidence {
			cv.Lines = append(cv.Lines, evidenceLine(e, clockOf(sc)))
		}
		cv.Lines = append(cv.Lines, c.Details...)
		v.All = append(v.All, cv)
	}
	for _, e := range sc.Events {
		v.Events = append(v.Events, eventView{Event: e, T: fmtDur(e.At)})
	}
	return v
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>killtest: {{.Verdict}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:64em;color:#222}
.pass{color:#176f2c}.fail{color:#b00020}.unknown{color:#8a6d00}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
code,pre{background:#f4f4f4}svg{background:#fafafa;border:1px solid #ddd}
</style></head><body>
<h1>killtest: <span class="{{.VerdictClass}}">{{.Verdict}}</span></h1>
<p>Command <code>{{.Suite.Command}}</code>, exit code {{.Exit}}, took {{.Took}}.</p>
<table><tr><th>scenario</th><th>run</th><th>seed</th><th>verdict</th><th>took</th></tr>
{{range .Scenarios}}<tr><td><a href="#{{.Name}}-{{.Run}}">{{.Name}}</a></td><td>{{.Run}}</td><td>{{.Seed}}</td><td class="{{.Verdict}}">{{.VerdictWord}}</td><td>{{.Took}}</td></tr>
{{end}}</table>
{{range .Scenarios}}
<h2 id="{{.Name}}-{{.Run}}">{{.Name}} (run {{.Run}}): <span class="{{.Verdict}}">{{.VerdictWord}}</span></h2>
{{if .Description}}<p>{{.Description}}</p>{{end}}
<p>Reproduce: <code>{{.Reproduce}}</code></p>
{{range .Notes}}<p>Note: {{.}}</p>{{end}}
{{if .HarnessError}}<p class="unknown">The harness could not judge: {{.HarnessError}}</p>{{end}}
{{if .CleanupError}}<p class="unknown">The harness could not clean up: {{.CleanupError}}</p>{{end}}
<table><tr><th>check</th><th>verdict</th><th>summary and evidence</th></tr>
{{range .All}}<tr><td>{{.Name}}</td><td class="{{.Verdict}}">{{.VerdictWord}}</td><td>{{.Summary}}{{if .Lines}}<ul>{{range .Lines}}<li>{{.}}</li>{{end}}</ul>{{end}}</td></tr>
{{end}}</table>
{{range .Trees}}<h3>Process tree at fault {{.Title}}</h3>
<svg width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="process tree at fault {{.Title}}">
{{range .Rows}}{{if .EdgeX}}<path d="M{{.EdgeX}},{{.EdgeY}} V{{.Y}} H{{.X}}" fill="none" stroke="#999999"/>{{end}}
<circle cx="{{.X}}" cy="{{.Y}}" r="4.5" fill="{{.Color}}" class="n-{{.Class}}"/><text x="{{.X}}" y="{{.Y}}" dx="9" dy="4" font-size="12" font-family="sans-serif" fill="{{.TextColor}}"{{if .Bold}} font-weight="bold"{{end}} class="t-{{.Class}}">{{.Text}}{{if .Fate}}  ← {{.Fate}}{{end}}</text>
{{end}}</svg>
<p><small>Red: signalled by the fault; orange: orphaned (its parent died after the fault and it ran on); grey: ended; blue: lived on. Lines go from parent to child as they were when the fault fired.</small></p>
{{end}}
{{range .Charts}}<h3>{{.Title}}</h3>
<svg width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{{.Title}} over time">
<g font-family="sans-serif" font-size="11">
{{$c := .}}{{range .YTicks}}<line x1="{{$c.X0}}" y1="{{.Pos}}" x2="{{$c.X1}}" y2="{{.Pos}}" stroke="#e2e2e2"/><text x="{{$c.X0}}" y="{{.Pos}}" dx="-5" dy="4" text-anchor="end">{{.Label}}</text>
{{end}}{{range .XTicks}}<line x1="{{.Pos}}" y1="{{$c.Y1}}" x2="{{.Pos}}" y2="{{$c.TickY}}" stroke="#444444"/><text x="{{.Pos}}" y="{{$c.Y1}}" dy="17" text-anchor="middle">{{.Label}}</text>
{{end}}<line x1="{{.X0}}" y1="{{.Y1}}" x2="{{.X1}}" y2="{{.Y1}}" stroke="#444444"/><line x1="{{.X0}}" y1="{{.Y0}}" x2="{{.X0}}" y2="{{.Y1}}" stroke="#444444"/>
<text x="{{.X1}}" y="{{.H}}" dy="-2" text-anchor="end" fill="#555555">time since the scenario started</text>
{{range .Marks}}<line x1="{{.X}}" y1="{{.LabelY}}" x2="{{.X}}" y2="{{$c.Y1}}" stroke="{{.Color}}" stroke-dasharray="4,3" class="m-{{.Kind}}"><title>{{.Title}}</title></line><text x="{{.X}}" y="{{.LabelY}}" dx="3" font-size="10" fill="{{.Color}}" class="l-{{.Kind}}">{{.Label}}<title>{{.Title}}</title></text>
{{end}}</g>
<polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" points="{{.Points}}"/>
</svg>
{{end}}
{{if .Events}}<h3>Timeline</h3><table><tr><th>t</th><th>event</th><th>what</th><th>detail</th><th>pids</th></tr>
{{range .Events}}<tr><td>{{.T}}</td><td>{{.Kind}}</td><td>{{.Name}}</td><td>{{.Detail}}</td><td>{{.PIDs}}</td></tr>
{{end}}</table>{{end}}
{{end}}
</body></html>
`))

// HTML writes one self-contained page (inline CSS and SVG, no external assets).
func HTML(w io.Writer, s Suite) error {
	data := struct {
		Suite        Suite
		Verdict      string
		VerdictClass string
		Exit         int
		Took         string
		Scenarios    []scenarioView
	}{Suite: s, Verdict: verdictWord(s.Verdict()), VerdictClass: string(s.Verdict()), Exit: s.ExitCode(), Took: fmtDur(s.Finished.Sub(s.Started))}
	for _, sc := range s.Scenarios {
		data.Scenarios = append(data.Scenarios, viewOf(sc))
	}
	if err := page.Execute(w, data); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}
