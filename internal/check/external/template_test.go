package external

import (
	"errors"
	"reflect"
	"strings"
	"testing"

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
		{`tool '{"json": {in}}' {a,b} *.txt ~ --ms={timeout_ms} -c{concurrency} {judge}`, []string{"tool", `{"json": {in}}`, "{a,b}", "*.txt", "~", "--ms={timeout_ms}", "-c{concurrency}", "{judge}"}, []string{"in", "timeout_ms", "concurrency", "judge"}},
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
	tp, err := parseTemplate(`tool -f {in} "{out}.{out}" '{"j":{in}}' {timeout}s`)
	if err != nil {
		t.Fatal(err)
	}
	got := tp.expand(map[string]string{"in": "/tmp/a b/in.txt", "out": "o", "timeout": "10"})
	want := []string{"tool", "-f", "/tmp/a b/in.txt", "o.o", `{"j":/tmp/a b/in.txt}`, "10s"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("expand = %q, want %q", got, want)
	}
}

func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{
		"mubeng -f {in} --check -o {out} -t {timeout}", `a\ b "c\"d" 'e' $'\x41' {judge}`, "a | b", "a $X",
		"a {unknown}", "tool '{\"j\":1}' {a,b} ~ *", "a\\\nb", "a #c",
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
