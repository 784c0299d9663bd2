package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
)

// chartView is one SVG chart, precomputed so the template only places numbers and escaped text.
type chartView struct {
	Title  string
	Points string // "x,y x,y ..." in the 0..W × 0..H box
	Lo, Hi string // axis labels
	Marks  []markView
	W, H   int
}

type markView struct {
	X     float64
	Label string
	Fault bool
}

type scenarioView struct {
	Scenario
	VerdictWord string
	Charts      []chartView
	Failed      []checkView
	All         []checkView
}

type checkView struct {
	Check
	VerdictWord string
	Lines       []string
}

const chartW, chartH = 720, 120

func buildChart(title string, t, v []float64, span float64, events []Event, label func(float64) string) chartView {
	cv := chartView{Title: title, W: chartW, H: chartH}
	lo, hi := minMax(v)
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		hi = lo + 1
	}
	var pts []string
	for i := range v {
		x := t[i] / span * chartW
		y := chartH - (v[i]-lo)/(hi-lo)*(chartH-10)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
	}
	cv.Points = strings.Join(pts, " ")
	cv.Lo, cv.Hi = label(lo), label(hi)
	for _, e := range events {
		if e.Kind != "fault" && e.Kind != "restart" && e.Kind != "stop" {
			continue
		}
		cv.Marks = append(cv.Marks, markView{X: e.At.Seconds() / span * chartW, Label: e.Name, Fault: e.Kind == "fault"})
	}
	return cv
}

func viewOf(sc Scenario) scenarioView {
	v := scenarioView{Scenario: sc, VerdictWord: verdictWord(sc.Verdict)}
	span := sc.Duration.Seconds()
	for _, x := range append(append([]float64(nil), sc.Chart.T...), sc.Chart.UT...) {
		if x > span {
			span = x
		}
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
	for _, c := range sc.Checks {
		cv := checkView{Check: c, VerdictWord: verdictWord(c.Verdict)}
		for _, e := range c.Evidence {
			cv.Lines = append(cv.Lines, evidenceLine(e))
		}
		cv.Lines = append(cv.Lines, c.Details...)
		v.All = append(v.All, cv)
	}
	return v
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>killtest: {{.Verdict}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
.pass{color:#176f2c}.fail{color:#b00020}.unknown{color:#8a6d00}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
code,pre{background:#f4f4f4}svg{background:#fafafa;border:1px solid #ddd}
.fault{stroke:#b00020}.other{stroke:#888}
</style></head><body>
<h1>killtest: <span class="{{.VerdictClass}}">{{.Verdict}}</span></h1>
<p>Command <code>{{.Suite.Command}}</code>, exit code {{.Exit}}.</p>
<table><tr><th>scenario</th><th>run</th><th>seed</th><th>verdict</th><th>took</th></tr>
{{range .Scenarios}}<tr><td><a href="#{{.Name}}-{{.Run}}">{{.Name}}</a></td><td>{{.Run}}</td><td>{{.Seed}}</td><td class="{{.Verdict}}">{{.VerdictWord}}</td><td>{{.Duration}}</td></tr>
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
{{range .Charts}}<h3>{{.Title}}</h3>
<svg width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{{.Title}}">
{{range .Marks}}<line x1="{{.X}}" y1="0" x2="{{.X}}" y2="{{$.ChartH}}" class="{{if .Fault}}fault{{else}}other{{end}}" stroke-dasharray="3,3"><title>{{.Label}}</title></line>
{{end}}<polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" points="{{.Points}}"/>
<text x="4" y="12" font-size="10">{{.Hi}}</text><text x="4" y="{{$.ChartH}}" font-size="10" dy="-2">{{.Lo}}</text>
</svg>
{{end}}
{{if .Events}}<h3>Timeline</h3><table><tr><th>t</th><th>event</th><th>what</th><th>detail</th><th>pids</th></tr>
{{range .Events}}<tr><td>{{.At}}</td><td>{{.Kind}}</td><td>{{.Name}}</td><td>{{.Detail}}</td><td>{{.PIDs}}</td></tr>
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
		ChartH       int
		Scenarios    []scenarioView
	}{Suite: s, Verdict: verdictWord(s.Verdict()), VerdictClass: string(s.Verdict()), Exit: s.ExitCode(), ChartH: chartH}
	for _, sc := range s.Scenarios {
		data.Scenarios = append(data.Scenarios, viewOf(sc))
	}
	if err := page.Execute(w, data); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}
