package external

import (
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

func TestParseTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		argv []string
		uses []string
	}{
		{"mubeng -f {in} --check -o {out} -t {timeout}", []string{"mubeng", "-f", "{in}", "--check", "-o", "{out}", "-t", "{timeout}"}, []string{"in", "out", "timeout"}},
		{`/opt/my\ tool 'a b' "c \"d\" \$e \q" $'t\tab' x{in}y`, []string{"/opt/my tool", "a b", `c "d" $e \q`, "t\tab", "x{in}y"}, []string{"in"}},
		{`tool '{"json": {in}}' --ms={timeout_ms} -s{timeout_s} -c{concurrency} {judge}`, []string{"tool", `{"json": {in}}`, "--ms={timeout_ms}", "-s{timeout_s}", "-c{concurrency}", "{judge}"}, []string{"in", "timeout_s", "timeout_ms", "concurrency", "judge"}},
		// Quoted or escaped, what a shell would expand is a plain character.
		{`tool '*.txt' "a?b" \[x] '~' "~/x" \~ '{a,b}' x~ a~b --opt=~ -a:~ '[::1]:8080'`, []string{"tool", "*.txt", "a?b", "[x]", "~", "~/x", "~", "{a,b}", "x~", "a~b", "--opt=~", "-a:~", "[::1]:8080"}, nil},
		{`tool "X=~" 'Y=~' X=\~ -X=~`, []string{"tool", "X=~", "Y=~", "X=~", "-X=~"}, nil},
		{"tool \\\n  -f {in}  # a comment", []string{"tool", "-f", "{in}"}, []string{"in"}},
		{`tool ""`, []string{"tool", ""}, nil},
	}
	for _, tt := range tests {
		tp, err := parseTemplate(tt.in)
		if err != nil {
			t.Errorf("parseTemplate(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(tp.argv, tt.argv) {
			t.Errorf("parseTemplate(%q) = %q, want %q", tt.in, tp.argv, tt.argv)
		}
		var uses []string
		for _, p := range placeholders {
			if tp.uses[p] {
				uses = append(uses, p)
			}
		}
		if !reflect.DeepEqual(uses, tt.uses) {
			t.Errorf("parseTemplate(%q) uses %v, want %v", tt.in, uses, tt.uses)
		}
	}
}

func TestParseTemplateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"mubeng -f {input}", "unknown placeholder {input}"},
		{"mubeng -f {in} | tee x", "a pipe"},
		{"mubeng -f {in} > out.txt", "a redirection"},
		{"mubeng -f {in} 2>&1", "a redirection"},
		{"mubeng; rm -rf /", "more than one command"},
		{"mubeng && true", "a pipe, list"},
		{"mubeng &", "'&'"},
		{"HOME=/x mubeng", "variable assignment"},
		{"mubeng -f $LIST", "$LIST: variables need a shell"},
		{"mubeng -f ${LIST}", "variables need a shell"},
		{"mubeng -f $(cat x)", "command substitution"},
		{"mubeng -f `cat x`", "command substitution"},
		{"mubeng -n $((1+1))", "arithmetic"},
		{"mubeng -f <(cat x)", "process substitution"},
		{"mubeng 'unterminated", "exec template"},
		{"{in} -f x", "program name"},
		{"(mubeng)", "compound command"},
		{"~/bin/mubeng -f {in}", "argument 0: unquoted ~ at column 1"},
		{"mubeng -f ~/list", "argument 2: unquoted ~ at column 11"},
		{"mubeng --file=x LIST=~/a", "argument 2: unquoted ~ at column 22"},
		{"mubeng A=b:~/c", "unquoted ~ at column 12"},
		{"echo *.txt", "argument 1: unquoted glob character '*' at column 6"},
		{"echo a?", "unquoted glob character '?' at column 7"},
		{"echo [ab]", "unquoted glob character '[' at column 6"},
		{"mubeng -p [::1]:8080", "unquoted glob character '['"},
		{"echo x{a,b}", "argument 1: brace expansion"},
		{"echo {1..3}", "brace expansion"},
		{"echo @(a|b)", "extended glob"},
		{"mubeng -t {timeout}s", "argument 2: {timeout} is a duration with its unit"},
		{"mubeng --timeout={timeout}ms", "{timeout} is a duration"},
	}
	for _, tt := range tests {
		_, err := parseTemplate(tt.in)
		if err == nil || !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseTemplate(%q) = %v, want an ErrTemplate saying %q", tt.in, err, tt.want)
		}
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	tp, err := parseTemplate(`tool -f {in} "{out}.{out}" '{"j":{in}}' {timeout_s}s`)
	if err != nil {
		t.Fatal(err)
	}
	got := tp.expand(map[string]string{"in": "/tmp/a b/in.txt", "out": "o", "timeout_s": "10"})
	want := []string{"tool", "-f", "/tmp/a b/in.txt", "o.o", `{"j":/tmp/a b/in.txt}`, "10s"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("expand = %q, want %q", got, want)
	}
}

func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{
		"mubeng -f {in} --check -o {out} -t {timeout}", `a\ b "c\"d" 'e' $'\x41' {judge}`, "a | b", "a $X",
		"a {unknown}", "tool '{\"j\":1}' {a,b} ~ *", "a\\\nb", "a #c", "a x=~:~ '*' \\? [", "~/x {timeout_s}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := parseTemplate(s)
		if err != nil {
			if !errors.Is(err, ErrTemplate) {
				t.Fatalf("parseTemplate(%q) error %v does not wrap ErrTemplate", s, err)
			}
			return
		}
		if len(tp.argv) == 0 {
			t.Fatalf("parseTemplate(%q) gave no argv", s)
		}
		// The argv, each argument single-quoted, parses back to itself: what is accepted is
		// exactly what a shell would pass, and no argument holds a NUL.
		quoted := make([]string, len(tp.argv))
		for i, a := range tp.argv {
			if strings.IndexByte(a, 0) >= 0 {
				t.Fatalf("parseTemplate(%q): NUL in argument %q", s, a)
			}
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		if again, err := parseTemplate(strings.Join(quoted, " ")); err == nil && !reflect.DeepEqual(again.argv, tp.argv) {
			t.Fatalf("parseTemplate(%q) = %q; quoted, it parses as %q", s, tp.argv, again.argv)
		} else if err != nil && !strings.Contains(err.Error(), "program name") {
			t.Fatalf("parseTemplate(%q) = %q; quoted, it fails: %v", s, tp.argv, err)
		}
		values := map[string]string{}
		for _, p := range placeholders {
			values[p] = "V"
		}
		argv := tp.expand(values)
		if len(argv) != len(tp.argv) {
			t.Fatalf("expand changed the argument count: %q → %q", tp.argv, argv)
		}
		for _, a := range argv {
			for _, p := range placeholders {
				if tp.uses[p] && strings.Contains(a, "{"+p+"}") {
					t.Fatalf("placeholder {%s} left in %q", p, a)
				}
			}
		}
	})
}

func TestMatch(t *testing.T) {
	t.Parallel()
	p := func(s string) proxy.Proxy { return mustParse(t, s) }
	chunk := []proxy.Proxy{
		p("http://127.0.0.2:80"), p("127.0.0.2:81"), p("socks5://u:pw@127.0.0.2:82"), p("127.0.0.2:83:u:pw"),
		p("http://127.0.0.2:84"), p("socks4://127.0.0.2:84"),
	}
	tests := []struct {
		name             string
		reported         []proxy.Proxy
		live, unexpected []proxy.Proxy
	}{
		{"exact", []proxy.Proxy{chunk[2], chunk[0]}, []proxy.Proxy{chunk[2], chunk[0]}, nil},
		{"probed scheme", []proxy.Proxy{p("socks5://127.0.0.2:81")}, []proxy.Proxy{p("socks5://127.0.0.2:81")}, nil},
		{"bare report of a schemed proxy", []proxy.Proxy{p("127.0.0.2:80")}, []proxy.Proxy{chunk[0]}, nil},
		{"credentials left out", []proxy.Proxy{p("socks5://127.0.0.2:82")}, []proxy.Proxy{chunk[2]}, nil},
		{"probed with credentials", []proxy.Proxy{p("http://u:pw@127.0.0.2:83")}, []proxy.Proxy{p("http://u:pw@127.0.0.2:83")}, nil},
		{"same address two schemes", []proxy.Proxy{p("socks4://127.0.0.2:84"), p("http://127.0.0.2:84")}, []proxy.Proxy{chunk[5], chunk[4]}, nil},
		{"duplicates and upgrade", []proxy.Proxy{chunk[1], p("http://127.0.0.2:81"), chunk[0], chunk[0]}, []proxy.Proxy{p("http://127.0.0.2:81"), chunk[0]}, nil},
		{"never given", []proxy.Proxy{p("http://127.0.0.9:80"), chunk[0]}, []proxy.Proxy{chunk[0]}, []proxy.Proxy{p("http://127.0.0.9:80")}},
		{"wrong scheme", []proxy.Proxy{p("socks5://127.0.0.2:80")}, nil, []proxy.Proxy{p("socks5://127.0.0.2:80")}},
		{"wrong credentials", []proxy.Proxy{p("socks5://u:other@127.0.0.2:82")}, nil, []proxy.Proxy{p("socks5://u:other@127.0.0.2:82")}},
	}
	for _, tt := range tests {
		live, unexpected := match(chunk, tt.reported)
		if !reflect.DeepEqual(live, tt.live) || !reflect.DeepEqual(unexpected, tt.unexpected) {
			t.Errorf("%s: match = %v, %v; want %v, %v", tt.name, live, unexpected, tt.live, tt.unexpected)
		}
	}
}

func TestStripANSI(t *testing.T) {
	t.Parallel()
	in := "\x1b[32mhttp://127.0.0.2:80\x1b[0m\r\n\x1b]0;title\x07\x1b[1;31mdone\x1b[m\x1bM"
	if got, want := string(stripANSI([]byte(in))), "http://127.0.0.2:80\r\ndone"; got != want {
		t.Fatalf("stripANSI = %q, want %q", got, want)
	}
}

func TestTimeoutValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d               time.Duration
		dur, secs, msec string
	}{
		{3 * time.Second, "3s", "3", "3000"},
		{1500 * time.Millisecond, "1.5s", "2", "1500"},
		{1250 * time.Millisecond, "1.25s", "2", "1250"},
		{10001 * time.Millisecond, "10.001s", "11", "10001"},
		{500 * time.Millisecond, "500ms", "1", "500"},
		{time.Minute, "60s", "60", "60000"},
		{90 * time.Second, "90s", "90", "90000"},
		{time.Millisecond, "1ms", "1", "1"},
		{time.Microsecond, "1ms", "1", "1"},
		{2*time.Second + 400*time.Microsecond, "2s", "3", "2000"},
	}
	for _, tt := range tests {
		v := timeoutValues(tt.d)
		if v[phTimeout] != tt.dur || v[phTimeoutS] != tt.secs || v[phTimeoutMS] != tt.msec {
			t.Errorf("timeoutValues(%v) = %v, want %s %s %s", tt.d, v, tt.dur, tt.secs, tt.msec)
		}
	}
	// Every value reads back, with Go's ParseDuration (mubeng's -t), as the duration to the ms.
	for d := time.Millisecond; d < 48*time.Hour; d = d*7/4 + time.Millisecond + 3*time.Microsecond {
		s := formatDuration(d)
		got, err := time.ParseDuration(s)
		if want := d.Round(time.Millisecond); err != nil || got != want {
			t.Fatalf("formatDuration(%v) = %q, which parses as %v, %v", d, s, got, err)
		}
	}
}

// TestParseTemplateAgreesWithBash: for templates that are accepted, bash splits the words (after
// the program) into exactly the same arguments: no expansion we refuse to do would have changed
// them.
func TestParseTemplateAgreesWithBash(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to compare with")
	}
	for _, s := range []string{
		"mubeng -f {in} --check -o {out} -t {timeout}",
		`/opt/my\ tool 'a b' "c \"d\" \$e \q" $'t\tab' x{in}y`,
		`tool '*.txt' "a?b" \[x] '~' "~/x" \~ '{a,b}' x~ a~b --opt=~ -a:~ '[::1]:8080'`,
		`tool "X=~" 'Y=~' X=\~ -X=~ a{B}c {} {A} '{"j":{in}}' "{\"k\":1,\"l\":2}"`,
		"tool \\\n  -f {in}  # a comment",
		`tool "" '' $'\x41\u00e9' 'it'\''s'`,
	} {
		tp, err := parseTemplate(s)
		if err != nil {
			t.Fatalf("parseTemplate(%q): %v", s, err)
		}
		words, _ := strings.CutPrefix(s, tp.argv[0])
		if strings.HasPrefix(s, "/opt/my") {
			words = s[len(`/opt/my\ tool`):]
		}
		out, err := exec.Command(bash, "-c", `printf '%s\0' ""`+words).Output()
		if err != nil {
			t.Fatalf("bash on %q: %v", s, err)
		}
		got := strings.Split(string(out), "\x00")
		got = got[1 : len(got)-1] // the "" that keeps printf from printing nothing, and the last NUL
		if !reflect.DeepEqual(got, tp.argv[1:]) {
			t.Errorf("template %q: we pass %q, bash %q", s, tp.argv[1:], got)
		}
	}
}

// TestParseTemplateConcurrent: templates are parsed by every CheckChunk, from many goroutines at
// once; with -race this fails if parsing shares state ($'...' once did, through mvdan.cc/sh).
func TestParseTemplateConcurrent(t *testing.T) {
	t.Parallel()
	done := make(chan error)
	for range 8 {
		go func() {
			tp, err := parseTemplate(`tool $'\x41\t' -f {in}`)
			if err == nil && tp.argv[1] != "A\t" {
				err = fmt.Errorf("argv %q", tp.argv)
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
