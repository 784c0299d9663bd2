package lab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// ClassCanceled is the class of a check that was canceled before it finished (internal/check's
// Canceled): Compare counts it as not checked.
const ClassCanceled = "canceled"

// classTLSError is internal/check's class of a failed TLS handshake with the judge.
const classTLSError = "tls_error"

// anonymityElite is internal/check's anonymity of a proxy that hides the client entirely.
const anonymityElite = "elite"

// Outcome is what a checker reported for one proxy: the fields of internal/check's Result that the
// truth speaks of, with the names of its JSON lines (`proxyline check --format jsonl`, `export
// --format jsonl`), so that ReadOutcomes reads them as they are written.
type Outcome struct {
	Proxy     proxy.Proxy // as reported: a bare candidate carries the scheme the checker found
	Class     string      // internal/check's class: alive, refused, timeout, mismatch, ...
	Err       string      // why it is not alive, as reported
	ExitIP    string      // the address the judge saw
	Anonymity string      // transparent, anonymous or elite
}

// Alive reports whether the checker said the proxy works.
func (o Outcome) Alive() bool { return o.Class == ClassAlive }

// Conditions are what a correct report depends on besides the proxy itself.
type Conditions struct {
	// Timeout is the checker's timeout of one check: a slow proxy whose delay it does not exceed
	// must time out. Zero means unknown: slow proxies are expected alive.
	Timeout time.Duration
	// TLSJudge says the checks went through the lab's https judge. A proxy cannot add headers to
	// a CONNECT tunnel, so every live proxy is elite; the lab's liar answers a CONNECT and then
	// hangs up, which is a failed TLS handshake (tls_error), not a forged page.
	TLSJudge bool
	// LiveOnly compares only alive against not alive: an external checker says nothing more.
	LiveOnly bool
}

// Expect returns what a correct checker reports for t under c: t with Alive, Class, Anonymity
// and ExitIP as they must be reported.
func (t Truth) Expect(c Conditions) Truth {
	if t.Delay > 0 && c.Timeout > 0 && c.Timeout <= t.Delay {
		t.Alive, t.Class, t.Anonymity, t.ExitIP = false, ClassTimeout, "", ""
	}
	if c.TLSJudge {
		if t.Kind == KindLiar {
			t.Class = classTLSError
		}
		if t.Alive {
			t.Anonymity = anonymityElite
		}
	}
	return t
}

// Score compares a checker's outcomes with the truth (Compare).
type Score struct {
	Total          int    // candidates in the truth
	Correct        int    // candidates reported exactly as the truth says
	FalsePositives int    // reported alive, but not alive
	FalseNegatives int    // alive, but not reported alive
	Other          int    // liveness right, something else wrong: class, exit IP, anonymity, scheme, proxy
	NotChecked     int    // candidates with no outcome, or a canceled one
	Unexpected     int    // outcomes for no candidate, and repeated outcomes for one
	Misses         []Miss // every wrong or unexpected outcome: candidates in the truth's order, then the rest
}

// Miss is one outcome that is not what the truth says.
type Miss struct {
	Truth Truth   // the candidate, as expected under the conditions; zero for an unexpected outcome
	Got   Outcome // what was reported
	Why   string  // "false positive", "class refused, want timeout", "no such candidate", ...
}

// Compare matches outcomes to candidates by address (every lab proxy has its own) and scores
// each against what a correct checker reports under c (Truth.Expect).
func Compare(truth []Truth, got []Outcome, c Conditions) Score {
	s := Score{Total: len(truth)}
	index := make(map[string]int, len(truth))
	for i, t := range truth {
		index[t.Proxy.Addr()] = i
	}
	byTruth := make([]*Outcome, len(truth))
	var unexpected []Miss
	for i := range got {
		o := &got[i]
		k, ok := index[o.Proxy.Addr()]
		switch {
		case !ok:
			unexpected = append(unexpected, Miss{Got: *o, Why: "no such candidate"})
		case byTruth[k] != nil:
			unexpected = append(unexpected, Miss{Truth: truth[k], Got: *o, Why: "a second outcome for the candidate"})
		default:
			byTruth[k] = o
		}
	}
	for i, t := range truth {
		o := byTruth[i]
		if o == nil || o.Class == ClassCanceled {
			s.NotChecked++
			continue
		}
		want := t.Expect(c)
		why := mismatch(want, *o, c.LiveOnly)
		switch why {
		case "":
			s.Correct++
			continue
		case whyFalsePositive:
			s.FalsePositives++
		case whyFalseNegative:
			s.FalseNegatives++
		default:
			s.Other++
		}
		s.Misses = append(s.Misses, Miss{Truth: want, Got: *o, Why: why})
	}
	s.Unexpected = len(unexpected)
	s.Misses = append(s.Misses, unexpected...)
	return s
}

const (
	whyFalsePositive = "false positive"
	whyFalseNegative = "false negative"
)

// mismatch says how o differs from want, the candidate's expected report; "" when it does not.
func mismatch(want Truth, o Outcome, liveOnly bool) string {
	switch {
	case o.Alive() && !want.Alive:
		return whyFalsePositive
	case !o.Alive() && want.Alive:
		return whyFalseNegative
	case liveOnly:
		return ""
	case o.Class != want.Class:
		return fmt.Sprintf("class %s, want %s", o.Class, want.Class)
	case !o.Alive():
		return ""
	case o.Anonymity != want.Anonymity:
		return fmt.Sprintf("anonymity %s, want %s", o.Anonymity, want.Anonymity)
	case o.ExitIP != want.ExitIP:
		return fmt.Sprintf("exit IP %s, want %s: a result reported for the wrong proxy?", o.ExitIP, want.ExitIP)
	case o.Proxy.Scheme != want.Scheme:
		return fmt.Sprintf("scheme %s, want %s", o.Proxy.Scheme, want.Scheme)
	case want.Proxy.Scheme != proxy.Unknown && o.Proxy != want.Proxy:
		return fmt.Sprintf("reported as %s, want the candidate %s", o.Proxy.Redacted(), want.Proxy.Redacted())
	}
	return ""
}

// OK reports whether every candidate was checked and reported correctly, with nothing else.
func (s Score) OK() bool { return s.Correct == s.Total && s.Unexpected == 0 }

// String is the one-line summary: "20 proxies, 18 correct, 1 false positives, ...".
func (s Score) String() string {
	return fmt.Sprintf("%d proxies, %d correct, %d false positives, %d false negatives, %d other errors, %d not checked, %d unexpected",
		s.Total, s.Correct, s.FalsePositives, s.FalseNegatives, s.Other, s.NotChecked, s.Unexpected)
}

// Write writes the summary as "lab: <String>", then one indented line per miss. Proxies are
// written without their passwords.
func (s Score) Write(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "lab: %s\n", s)
	for _, m := range s.Misses {
		if m.Truth.Kind == "" {
			fmt.Fprintf(&b, "  %s: %s; got %s %q\n", m.Got.Proxy.Redacted(), m.Why, m.Got.Class, m.Got.Err)
			continue
		}
		fmt.Fprintf(&b, "  %s (%s): %s; got %s %q\n", m.Truth.Proxy.Redacted(), m.Truth.Kind, m.Why, m.Got.Class, m.Got.Err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// outcomeJSON is one JSON line of internal/check's ResultWriter, as far as an Outcome needs it.
type outcomeJSON struct {
	Proxy     string `json:"proxy"`
	Class     string `json:"class"`
	Error     string `json:"error"`
	ExitIP    string `json:"exit_ip"`
	Anonymity string `json:"anonymity"`
}

// ReadOutcomes reads results as JSON lines (`proxyline check --format jsonl`, `proxyline export
// --format jsonl`); other fields are ignored, blank lines skipped. An error names the line.
func ReadOutcomes(r io.Reader) ([]Outcome, error) {
	var out []Outcome
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var j outcomeJSON
		if err := json.Unmarshal(line, &j); err != nil {
			return nil, fmt.Errorf("result line %d: %w", n, err)
		}
		p, err := proxy.Parse(j.Proxy)
		if err != nil {
			return nil, fmt.Errorf("result line %d: %w", n, err)
		}
		out = append(out, Outcome{Proxy: p, Class: j.Class, Err: j.Error, ExitIP: j.ExitIP, Anonymity: j.Anonymity})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	return out, nil
}
