package proxy

import (
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// lineErr is the part of a LineError a table checks.
type lineErr struct {
	line  int
	field string
	err   error
}

func TestRead(t *testing.T) {
	t.Parallel()
	a := Proxy{Scheme: HTTP, Host: "1.2.3.4", Port: 8080}
	b := Proxy{Host: "5.6.7.8", Port: 3128, User: "bob", Password: "pw"}
	c := Proxy{Scheme: SOCKS5, Host: "2001:db8::1", Port: 1080}
	tests := []struct {
		name   string
		format Format
		in     string
		want   []Proxy
		errs   []lineErr
	}{
		{"text", Auto, "http://1.2.3.4:8080\n5.6.7.8:3128:bob:pw\nsocks5://[2001:db8::1]:1080\n", []Proxy{a, b, c}, nil},
		{"text comments blank crlf bom", Auto, "\ufeff# list\r\n\r\nhttp://1.2.3.4:8080 # first\r\n  \t\r\nbob:pw@5.6.7.8:3128\t# second\r\n", []Proxy{a, b}, nil},
		{"text no final newline", Text, "http://1.2.3.4:8080", []Proxy{a}, nil},
		{"text duplicates keep first", Auto, "5.6.7.8:3128:bob:pw\nhttp://1.2.3.4:8080\nHTTP://1.2.3.4:8080\nbob:pw@5.6.7.8:3128\n", []Proxy{b, a}, nil},
		{"text bad lines kept going", Auto, "http://1.2.3.4:8080\n1.2.3.4:99999\nftp://x:1\n#c\nsocks5://[2001:db8::1]:1080\n", []Proxy{a, c},
			[]lineErr{{2, "port", ErrPortRange}, {3, "scheme", ErrScheme}}},
		{"text password with hash", Text, "http://u:p#w@1.2.3.4:8080\n", []Proxy{{Scheme: HTTP, Host: "1.2.3.4", Port: 8080, User: "u", Password: "p#w"}}, nil},
		{"empty", Auto, "", nil, nil},
		{"only comments", Auto, "# a\n\n#b", nil, nil},
		{"jsonl", Auto, `{"url":"http://1.2.3.4:8080","class":"alive","latency_ms":12}` + "\n" +
			`{"ip":"5.6.7.8","port":"3128","username":"bob","pass":"pw"}` + "\n" +
			`{"Protocol":"SOCKS5h","Host":"2001:db8::1","Port":1080}` + "\n", []Proxy{a, b, c}, nil},
		{"jsonl proxy key and comments", Auto, "# x\n\n{\"proxy\":\"5.6.7.8:3128:bob:pw\"}\r\n{\"type\":\"http\",\"host\":\"1.2.3.4\",\"port\":8080,\"user\":null}\n", []Proxy{b, a}, nil},
		{"jsonl url wins", JSONL, `{"url":"http://1.2.3.4:8080","scheme":"socks4","host":"9.9.9.9","port":1}`, []Proxy{a}, nil},
		{"jsonl errors", Auto, `{"url":"http://1.2.3.4:8080"}` + "\n" +
			`{"host":"1.2.3.4","port":70000}` + "\n" +
			`{"host":"1.2.3.4","port":true}` + "\n" +
			`{"host":"1.2.3.4","port":80.5}` + "\n" +
			`{"host":1,"port":80}` + "\n" +
			`{"host":"1.2.3.4"` + "\n" +
			`[1,2]` + "\n" +
			`{"scheme":"gopher","host":"1.2.3.4","port":80}` + "\n" +
			`{"port":80}` + "\n", []Proxy{a},
			[]lineErr{{2, "port", ErrPortRange}, {3, "port", nil}, {4, "port", ErrPortSyntax}, {5, "host", nil}, {6, "", ErrJSON}, {7, "", ErrJSON}, {8, "scheme", ErrScheme}, {9, "host", ErrMissing}}},
		{"csv fields", Auto, "IP,Port,Protocol,Username,Password,country\n1.2.3.4,8080,http,,,de\n5.6.7.8, 3128,,bob,pw,fr\n", []Proxy{a, b}, nil},
		{"csv url column", Auto, "# exported\nproxy\nhttp://1.2.3.4:8080\r\n5.6.7.8:3128:bob:pw\r\n", []Proxy{a, b}, nil},
		{"csv semicolon", Auto, "host;port;scheme\n2001:db8::1;1080;socks5\n", []Proxy{c}, nil},
		{"csv tab", Auto, "host\tport\n[2001:db8::1]\t1080\n", []Proxy{{Host: "2001:db8::1", Port: 1080}}, nil},
		{"csv errors", Auto, "host,port\n1.2.3.4,0\n\"bad,\"x\n,,\n1.2.3.4\n1.2.3.4,80\n", []Proxy{{Host: "1.2.3.4", Port: 80}},
			[]lineErr{{2, "port", ErrPortRange}, {3, "", nil}, {5, "port", ErrMissing}}},
		{"csv unterminated quote", Auto, "host,port\n1.2.3.4,80\n\"5.6.7.8,81\n1.2.3.4,99999\n[2001:db8::1],1080\n", []Proxy{{Host: "1.2.3.4", Port: 80}, {Host: "2001:db8::1", Port: 1080}},
			[]lineErr{{3, "", ErrCSVQuote}, {4, "port", ErrPortRange}}},
		{"csv quoted field over lines", Auto, "host,port,note\n1.2.3.4,80,\"two\nlines, \"\"quoted\"\"\"\n1.2.3.4,0\n5.6.7.8,3128\n", []Proxy{{Host: "1.2.3.4", Port: 80}, {Host: "5.6.7.8", Port: 3128}},
			[]lineErr{{4, "port", ErrPortRange}}},
		{"csv bad quote ends its line only", Auto, "host,port\n\"1.2.3.4\"x,80\n5.6.7.8,3128\n", []Proxy{{Host: "5.6.7.8", Port: 3128}},
			[]lineErr{{2, "", csv.ErrQuote}}},
		{"csv quote in a comment", Auto, "host,port\n# a \" here\n5.6.7.8,3128\n", []Proxy{{Host: "5.6.7.8", Port: 3128}}, nil},
		{"csv header without port", CSV, "host,country\n1.2.3.4,de\n", nil, []lineErr{{1, "", ErrCSVHeader}}},
		{"forced text on json", Text, `{"url":"http://1.2.3.4:8080"}`, nil, []lineErr{{1, "host", ErrHost}}},
		{"forced jsonl on text", JSONL, "1.2.3.4:80\n", nil, []lineErr{{1, "", ErrJSON}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, errs, err := Read(strings.NewReader(tt.in), "list", tt.format)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("proxies = %v, want %v", got, tt.want)
			}
			if len(errs) != len(tt.errs) {
				t.Fatalf("errors = %v, want %d", errs, len(tt.errs))
			}
			for i, e := range errs {
				w := tt.errs[i]
				if e.File != "list" || e.Line != w.line || e.Field != w.field || (w.err != nil && !errors.Is(e, w.err)) {
					t.Errorf("error %d = %v (line %d field %q), want line %d field %q %v", i, e, e.Line, e.Field, w.line, w.field, w.err)
				}
			}
		})
	}
}

func TestReadLongLine(t *testing.T) {
	t.Parallel()
	in := "1.2.3.4:80\n" + strings.Repeat("x", maxLine+10) + "\n5.6.7.8:80\n"
	got, errs, err := Read(strings.NewReader(in), "big", Auto)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(errs) != 1 || errs[0].Line != 2 || !errors.Is(errs[0], ErrLineTooLong) {
		t.Fatalf("got %v, errors %v", got, errs)
	}
	// A long first line: detection gives up on it and the text reader reports it.
	got, errs, err = Read(strings.NewReader(in[len("1.2.3.4:80\n"):]), "big", Auto)
	if err != nil || len(got) != 1 || len(errs) != 1 || errs[0].Line != 1 {
		t.Fatalf("got %v, errors %v, %v", got, errs, err)
	}
}

func TestReadIOError(t *testing.T) {
	t.Parallel()
	r := iotest.TimeoutReader(strings.NewReader(strings.Repeat("1.2.3.4:80\n", 10)))
	_, _, err := Read(iotest.HalfReader(r), "flaky", Text)
	if err == nil || !strings.Contains(err.Error(), "flaky") {
		t.Fatalf("Read error = %v, want one naming the input", err)
	}
	if _, _, err := ReadFile(filepath.Join(t.TempDir(), "missing.txt"), Auto); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadFile(missing) = %v", err)
	}
}

func TestReadFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "proxies.txt")
	if err := os.WriteFile(path, []byte("1.2.3.4:80\n1.2.3.4:99999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, errs, err := ReadFile(path, Auto)
	if err != nil || len(got) != 1 || len(errs) != 1 {
		t.Fatalf("ReadFile = %v, %v, %v", got, errs, err)
	}
	if want := path + `:2: port: "99999" out of range 1-65535`; errs[0].Error() != want {
		t.Fatalf("error %q, want %q", errs[0], want)
	}
}

// TestScan: Scan hands over every proxy (duplicates too) and every bad line as it reads, and
// stops with the reader's error, which it returns wrapped.
func TestScan(t *testing.T) {
	t.Parallel()
	in := "http://1.2.3.4:8080\nnot a proxy\nhttp://1.2.3.4:8080\n5.6.7.8:3128\n"
	var got []string
	var bad []int
	err := Scan(strings.NewReader(in), "list", Auto, func(p Proxy) { got = append(got, p.String()) },
		func(e *LineError) { bad = append(bad, e.Line) })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://1.2.3.4:8080", "http://1.2.3.4:8080", "5.6.7.8:3128"}; !reflect.DeepEqual(got, want) {
		t.Errorf("proxies %q, want %q", got, want)
	}
	if !reflect.DeepEqual(bad, []int{2}) {
		t.Errorf("bad lines %v, want [2]", bad)
	}
	stop := errors.New("enough")
	err = Scan(io.MultiReader(strings.NewReader(in), iotest.ErrReader(stop)), "list", Text, nil, nil)
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "list") {
		t.Errorf("Scan with a failing reader = %v, want it wrapped, naming the list", err)
	}
}

// TestReadCSVUnterminatedQuote is the report of the issue: a quote opened at line 3 and never
// closed is reported at line 3 with its text, and the bad line after it is reported too.
func TestReadCSVUnterminatedQuote(t *testing.T) {
	t.Parallel()
	in := "host,port\n1.2.3.4,80\n\"5.6.7.8,81\n1.2.3.4,99999\n9.9.9.9,82\n"
	got, errs, err := Read(strings.NewReader(in), "list.csv", Auto)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(errs) != 2 {
		t.Fatalf("got %v, errors %v", got, errs)
	}
	if want := `list.csv:3: "\"5.6.7.8,81" opens a quoted field (") that is never closed`; errs[0].Error() != want {
		t.Errorf("error %q, want %q", errs[0], want)
	}
	if errs[1].Line != 4 || !errors.Is(errs[1], ErrPortRange) {
		t.Errorf("second error %v, want line 4's port", errs[1])
	}
	// A quote that is still open after maxQuotedLines lines: the lines after it are read again.
	in = "host,port\n\"x\n" + strings.Repeat("5.6.7.8,3128\n", maxQuotedLines+5) + "1.2.3.4,0\n"
	got, errs, err = Read(strings.NewReader(in), "long.csv", Auto)
	if err != nil || len(got) != 1 || len(errs) != 2 || errs[0].Line != 2 || errs[1].Line != maxQuotedLines+8 {
		t.Fatalf("got %v, errors %v, %v", got, errs, err)
	}
}

func TestQuoteOpen(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		line    string
		comma   byte
		inQuote bool
		want    bool
	}{
		{`a,b`, ',', false, false},
		{`"a`, ',', false, true},
		{`"a",b`, ',', false, false},
		{`a,"b`, ',', false, true},
		{`a,  "b`, ',', false, true},
		{`a,x"b`, ',', false, false}, // a bare quote: csv's error, the line ends the record
		{`"a""`, ',', false, true},   // an escaped quote, still open
		{`"a"""`, ',', false, false}, // an escaped quote, then the closing one
		{`"a"x`, ',', false, false},  // csv's ErrQuote ends the record
		{`b"`, ',', true, false},
		{`b`, ',', true, true},
		{`b";"c`, ';', true, true},
		{"a\t\t\"b", '\t', false, true},
		{"a,\u3000\"b", ',', false, true},
		{"a,é\"b", ',', false, false},
	} {
		if got := quoteOpen(tt.line, tt.comma, tt.inQuote); got != tt.want {
			t.Errorf("quoteOpen(%q, %q, %v) = %v, want %v", tt.line, tt.comma, tt.inQuote, got, tt.want)
		}
	}
}
