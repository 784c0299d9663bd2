package proxy

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sample is a list exercising every kind of value the formats must carry.
var sample = []Proxy{
	{Scheme: HTTP, Host: "1.2.3.4", Port: 8080},
	{Scheme: HTTPS, Host: "proxy.example.com", Port: 443, User: "u", Password: "p"},
	{Scheme: SOCKS4, Host: "10.0.0.1", Port: 1080},
	{Scheme: SOCKS4A, Host: "10.0.0.2", Port: 1080},
	{Scheme: SOCKS5, Host: "2001:db8::1", Port: 1080, User: "us:er@x", Password: "p@ss:w/o#rd %41 ,\"é"},
	{Scheme: SOCKS5, Host: "10.0.0.3", Port: 1, User: " lead", Password: "trail "},
	{Host: "5.6.7.8", Port: 3128},
	{Host: "::1", Port: 65535, User: "bob", Password: "p:w@x#y"},
	{Host: "5.6.7.9", Port: 3128, Password: "only"},
	{Scheme: HTTP, Host: "h", Port: 2, User: "only"},
}

func TestWriteReadRoundTrip(t *testing.T) {
	t.Parallel()
	for _, f := range []Format{Text, JSONL, CSV} {
		for _, detect := range []bool{false, true} {
			t.Run(string(f), func(t *testing.T) {
				t.Parallel()
				var buf bytes.Buffer
				w := NewWriter(&buf, f)
				for i, p := range sample {
					if err := w.Write(p, Field{"class", "alive"}, Field{"latency_ms", i * 7}, Field{"exit_ip", nil}); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				rf := f
				if detect {
					rf = Auto
				}
				got, errs, err := Read(&buf, "out", rf)
				if err != nil || len(errs) > 0 {
					t.Fatalf("Read: %v %v\n%s", err, errs, buf.String())
				}
				if !reflect.DeepEqual(got, sample) {
					t.Fatalf("read back\n%v\nwant\n%v", got, sample)
				}
			})
		}
	}
}

func TestWriterOutput(t *testing.T) {
	t.Parallel()
	p := Proxy{Scheme: SOCKS5, Host: "::1", Port: 1080, User: "u", Password: "p&<"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	extra := []Field{{"class", "alive"}, {"latency_ms", 12}, {"ok", true}, {"checked_at", at}}
	tests := []struct {
		f    Format
		want string
	}{
		{Auto, "socks5://u:p&%3C@[::1]:1080\n"},
		{Text, "socks5://u:p&%3C@[::1]:1080\n"},
		{JSONL, `{"url":"socks5://u:p&%3C@[::1]:1080","scheme":"socks5","host":"::1","port":1080,"user":"u","password":"p&<","class":"alive","latency_ms":12,"ok":true,"checked_at":"2026-01-02T03:04:05Z"}` + "\n"},
		{CSV, "url,scheme,host,port,user,password,class,latency_ms,ok,checked_at\nsocks5://u:p&%3C@[::1]:1080,socks5,::1,1080,u,p&<,alive,12,true,2026-01-02T03:04:05Z\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		w := NewWriter(&buf, tt.f)
		if err := w.Write(p, extra...); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.f, buf.String(), tt.want)
		}
	}
	var buf bytes.Buffer
	w := NewWriter(&buf, JSONL)
	if err := w.Write(Proxy{Host: "h", Port: 1}); err != nil || w.Flush() != nil {
		t.Fatal(err)
	}
	if want := `{"url":"h:1","host":"h","port":1}` + "\n"; buf.String() != want {
		t.Errorf("jsonl without scheme: %q, want %q", buf.String(), want)
	}
}

func TestWriterErrors(t *testing.T) {
	t.Parallel()
	p := Proxy{Host: "h", Port: 1}
	tests := []struct {
		name   string
		f      Format
		first  []Field
		second []Field
	}{
		{"reserved key", JSONL, []Field{{"host", "x"}}, nil},
		{"empty key", JSONL, []Field{{"", "x"}}, nil},
		{"repeated key", CSV, []Field{{"a", 1}, {"a", 2}}, nil},
		{"unencodable", JSONL, []Field{{"c", make(chan int)}}, nil},
		{"csv keys change", CSV, []Field{{"a", 1}}, []Field{{"b", 1}}},
		{"csv keys grow", CSV, []Field{{"a", 1}}, []Field{{"a", 1}, {"b", 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := NewWriter(&bytes.Buffer{}, tt.f)
			err := w.Write(p, tt.first...)
			if tt.second != nil {
				if err != nil {
					t.Fatalf("first Write: %v", err)
				}
				err = w.Write(p, tt.second...)
			}
			if err == nil {
				t.Fatal("Write succeeded")
			}
			if w.Flush() == nil || w.Write(p) == nil {
				t.Fatal("the error is not sticky")
			}
		})
	}
	w := NewWriter(failWriter{}, Text)
	_ = w.Write(p)
	if err := w.Flush(); !errors.Is(err, errFail) {
		t.Fatalf("Flush = %v, want the writer's error", err)
	}
}

var errFail = errors.New("disk full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errFail }

// TestWriteStringStable checks that String is what Text writes, so a text list from proxyline is
// exactly mubeng's.
func TestWriteStringStable(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := NewWriter(&buf, Text)
	for _, p := range sample {
		_ = w.Write(p, Field{"ignored", 1})
	}
	_ = w.Flush()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for i, p := range sample {
		if lines[i] != p.String() {
			t.Errorf("line %d = %q, want %q", i, lines[i], p.String())
		}
	}
}
