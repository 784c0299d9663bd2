package proxy

import (
	"errors"
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
