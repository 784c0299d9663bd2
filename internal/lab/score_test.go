package lab

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// scoreTruth is a small truth by hand: one candidate of each case Compare must tell apart.
func scoreTruth() []Truth {
	p := func(s string) proxy.Proxy {
		pp, err := proxy.Parse(s)
		if err != nil {
			panic(err)
		}
		return pp
	}
	return []Truth{
		{Proxy: p("http://127.0.0.3:8080"), Kind: KindHTTP, Alive: true, Scheme: proxy.HTTP, Anonymity: "elite", ExitIP: "127.0.0.3", Class: ClassAlive},
		{Proxy: p("127.0.0.4:1080"), Kind: KindBare, Alive: true, Scheme: proxy.SOCKS5, Anonymity: "elite", ExitIP: "127.0.0.4", Class: ClassAlive},
		{Proxy: p("http://127.0.0.5:8080"), Kind: KindSlow, Alive: true, Scheme: proxy.HTTP, Anonymity: "elite", ExitIP: "127.0.0.5", Class: ClassAlive, Delay: time.Second},
		{Proxy: p("http://127.0.0.6:8080"), Kind: KindRefused, Scheme: proxy.HTTP, Class: ClassRefused},
		{Proxy: p("http://127.0.0.7:8080"), Kind: KindLiar, Scheme: proxy.HTTP, Class: ClassMismatch},
		{Proxy: p("http://user:secret@127.0.0.8:8080"), Kind: KindHTTPAuth, Alive: true, Scheme: proxy.HTTP, Anonymity: "transparent", ExitIP: "127.0.0.1", Class: ClassAlive},
	}
}

// correctOutcomes are the reports of a correct checker under c.
func correctOutcomes(truth []Truth, c Conditions) []Outcome {
	out := make([]Outcome, len(truth))
	for i, t := range truth {
		w := t.Expect(c)
		o := Outcome{Proxy: t.Proxy, Class: w.Class}
		o.Proxy.Scheme = w.Scheme
		if w.Alive {
			o.Anonymity, o.ExitIP = w.Anonymity, w.ExitIP
		} else {
			o.Err = "some error"
		}
		out[i] = o
	}
	return out
}

func TestCompare(t *testing.T) {
	t.Parallel()
	truth := scoreTruth()
	long := Conditions{Timeout: 2 * time.Second}
	short := Conditions{Timeout: 500 * time.Millisecond}
	tests := []struct {
		name  string
		c     Conditions
		edit  func(os []Outcome) []Outcome // from a correct checker's outcomes under c
		score Score                        // counts only; Misses are checked by why
		why   []string
	}{
		{"all correct", long, nil, Score{Correct: 6}, nil},
		{"slow ones time out under a short timeout", short, nil, Score{Correct: 6}, nil},
		{"slow alive under a short timeout is a false positive", short, func(os []Outcome) []Outcome {
			os[2] = Outcome{Proxy: os[2].Proxy, Class: ClassAlive, Anonymity: "elite", ExitIP: "127.0.0.5"}
			return os
		}, Score{Correct: 5, FalsePositives: 1}, []string{"false positive"}},
		{"refused reported alive", long, func(os []Outcome) []Outcome {
			os[3].Class = ClassAlive
			return os
		}, Score{Correct: 5, FalsePositives: 1}, []string{"false positive"}},
		{"live reported timeout", long, func(os []Outcome) []Outcome {
			os[0] = Outcome{Proxy: os[0].Proxy, Class: ClassTimeout, Err: "i/o timeout"}
			return os
		}, Score{Correct: 5, FalseNegatives: 1}, []string{"false negative"}},
		{"wrong class of a dead one", long, func(os []Outcome) []Outcome {
			os[3].Class = ClassTimeout
			return os
		}, Score{Correct: 5, Other: 1}, []string{"class timeout, want refused"}},
		{"exit IP of another proxy", long, func(os []Outcome) []Outcome {
			os[0].ExitIP = "127.0.0.4"
			return os
		}, Score{Correct: 5, Other: 1}, []string{"exit IP 127.0.0.4, want 127.0.0.3"}},
		{"wrong anonymity", long, func(os []Outcome) []Outcome {
			os[5].Anonymity = "elite"
			return os
		}, Score{Correct: 5, Other: 1}, []string{"anonymity elite, want transparent"}},
		{"bare one probed wrong", long, func(os []Outcome) []Outcome {
			os[1].Proxy.Scheme = proxy.HTTP
			return os
		}, Score{Correct: 5, Other: 1}, []string{"scheme http, want socks5"}},
		{"credentials lost", long, func(os []Outcome) []Outcome {
			os[5].Proxy.User, os[5].Proxy.Password = "", ""
			return os
		}, Score{Correct: 5, Other: 1}, []string{"reported as http://127.0.0.8:8080, want the candidate http://user:xxxxx@127.0.0.8:8080"}},
		{"missing and canceled are not checked", long, func(os []Outcome) []Outcome {
			os[4].Class = ClassCanceled
			return os[1:]
		}, Score{Correct: 4, NotChecked: 2}, nil},
		{"repeated and foreign outcomes", long, func(os []Outcome) []Outcome {
			foreign := os[0]
			foreign.Proxy.Host = "127.0.0.99"
			return append(os, os[3], foreign)
		}, Score{Correct: 6, Unexpected: 2}, []string{"a second outcome for the candidate", "no such candidate"}},
		{"live only ignores classes", Conditions{Timeout: 2 * time.Second, LiveOnly: true}, func(os []Outcome) []Outcome {
			os[3].Class, os[0].ExitIP = ClassTimeout, ""
			return os
		}, Score{Correct: 6}, nil},
		{"live only still counts a false negative", Conditions{LiveOnly: true}, func(os []Outcome) []Outcome {
			os[2].Class = "dead"
			return os
		}, Score{Correct: 5, FalseNegatives: 1}, []string{"false negative"}},
		{"tls judge: liar fails the handshake, all live elite", Conditions{Timeout: 2 * time.Second, TLSJudge: true}, nil, Score{Correct: 6}, nil},
		{"tls judge: a liar's forged page is wrong", Conditions{Timeout: 2 * time.Second, TLSJudge: true}, func(os []Outcome) []Outcome {
			os[4].Class = ClassMismatch
			return os
		}, Score{Correct: 5, Other: 1}, []string{"class mismatch, want tls_error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := correctOutcomes(truth, tt.c)
			if tt.edit != nil {
				got = tt.edit(got)
			}
			s := Compare(truth, got, tt.c)
			want := tt.score
			want.Total = len(truth)
			if s.Total != want.Total || s.Correct != want.Correct || s.FalsePositives != want.FalsePositives ||
				s.FalseNegatives != want.FalseNegatives || s.Other != want.Other || s.NotChecked != want.NotChecked ||
				s.Unexpected != want.Unexpected {
				t.Errorf("score %s, want %s", s, want)
			}
			if len(s.Misses) != len(tt.why) {
				t.Fatalf("misses %+v, want %q", s.Misses, tt.why)
			}
			for i, m := range s.Misses {
				if m.Why != tt.why[i] && !strings.HasPrefix(m.Why, tt.why[i]) {
					t.Errorf("miss %d: %q, want %q", i, m.Why, tt.why[i])
				}
			}
			if ok := s.Correct == len(truth) && s.Unexpected == 0; s.OK() != ok {
				t.Errorf("OK() = %v, want %v", s.OK(), ok)
			}
		})
	}
}

// TestScoreWrite: the summary has the words the commands' users (and tests) look for, and
// proxies are written without their passwords.
func TestScoreWrite(t *testing.T) {
	t.Parallel()
	truth := scoreTruth()
	got := correctOutcomes(truth, Conditions{})
	got[5].Class, got[5].Err = ClassRefused, "connection refused"
	var b bytes.Buffer
	if err := Compare(truth, got, Conditions{}).Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"lab: 6 proxies, 5 correct, 0 false positives, 1 false negatives, 0 other errors, 0 not checked, 0 unexpected\n",
		"  http://user:xxxxx@127.0.0.8:8080 (http_auth): false negative; got refused \"connection refused\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret") {
		t.Errorf("a password in the output:\n%s", out)
	}
}

func TestReadOutcomes(t *testing.T) {
	t.Parallel()
	in := `{"proxy":"socks5://127.0.0.4:1080","class":"alive","exit_ip":"127.0.0.4","anonymity":"elite","connect_ms":1.5,"total_ms":2,"checked_at":"2026-01-01T00:00:00Z","sources":["a"]}

{"proxy":"http://u:p@127.0.0.6:8080","class":"refused","error":"connection refused"}
`
	os, err := ReadOutcomes(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Outcome{
		{Proxy: proxy.Proxy{Scheme: proxy.SOCKS5, Host: "127.0.0.4", Port: 1080}, Class: "alive", ExitIP: "127.0.0.4", Anonymity: "elite"},
		{Proxy: proxy.Proxy{Scheme: proxy.HTTP, Host: "127.0.0.6", Port: 8080, User: "u", Password: "p"}, Class: "refused", Err: "connection refused"},
	}
	if len(os) != len(want) || os[0] != want[0] || os[1] != want[1] {
		t.Errorf("ReadOutcomes = %+v, want %+v", os, want)
	}
	for _, bad := range []struct{ in, want string }{
		{"{\"proxy\":\"http://127.0.0.3:80\",\"class\":\"alive\"}\nnot json\n", "result line 2"},
		{"{\"proxy\":\"nope\",\"class\":\"alive\"}\n", "result line 1"},
	} {
		if _, err := ReadOutcomes(strings.NewReader(bad.in)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ReadOutcomes(%q) error %v, want one naming %q", bad.in, err, bad.want)
		}
	}
}
