package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// JUnit XML in the shape CI systems read (Jenkins, GitLab, GitHub actions): one testsuite per
// scenario run, one testcase per check; fail → <failure>, unknown → <error> (the harness
// could not judge, which CI should not count as a pass).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     float64      `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Time      float64     `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Props     []junitProp `xml:"properties>property"`
	Cases     []junitCase `xml:"testcase"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// JUnit writes the suite as JUnit XML.
func JUnit(w io.Writer, s Suite) error {
	root := junitSuites{Name: "killtest", Time: seconds(s.Finished.Sub(s.Started))}
	for _, sc := range s.Scenarios {
		name := sc.Name
		if sc.Run > 1 {
			name = fmt.Sprintf("%s#%d", sc.Name, sc.Run)
		}
		js := junitSuite{Name: name, Time: seconds(sc.Duration), Timestamp: sc.Started.UTC().Format("2006-01-02T15:04:05"),
			Props: []junitProp{{"seed", fmt.Sprint(sc.Seed)}, {"reproduce", sc.Reproduce}, {"file", sc.File}}}
		checks := sc.Checks
		if sc.HarnessError != "" || sc.CleanupError != "" {
			checks = append([]Check{{Name: "harness", Verdict: Unknown, Summary: strings.TrimSpace(sc.HarnessError + " " + sc.CleanupError)}}, checks...)
		}
		for _, c := range checks {
			jc := junitCase{Name: c.Name, Classname: "killtest." + sc.Name}
			var body strings.Builder
			for _, e := range c.Evidence {
				body.WriteString(evidenceLine(e, clockOf(sc)) + "\n")
			}
			for _, d := range c.Details {
				body.WriteString(d + "\n")
			}
			switch c.Verdict {
			case Fail:
				jc.Failure = &junitProblem{Message: c.Summary, Type: "fail", Body: body.String()}
				js.Failures++
			case Unknown:
				jc.Error = &junitProblem{Message: c.Summary, Type: "unknown", Body: body.String()}
				js.Errors++
			default:
				jc.SystemOut = c.Summary
			}
			js.Cases = append(js.Cases, jc)
			js.Tests++
		}
		root.Tests += js.Tests
		root.Failures += js.Failures
		root.Errors += js.Errors
		root.Suites = append(root.Suites, js)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(root); err != nil {
		return fmt.Errorf("write junit report: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// seconds is a JUnit time attribute: seconds, to the millisecond.
func seconds(d time.Duration) float64 { return d.Round(time.Millisecond).Seconds() }
