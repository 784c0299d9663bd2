package proxy

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// checkValue fails unless p is a value Parse could have returned: it formats with String and
// parses back equal.
func checkValue(t *testing.T, p Proxy) {
	t.Helper()
	if !p.Scheme.Valid() || p.Port == 0 || p.Host == "" {
		t.Fatalf("invalid value %#v", p)
	}
	again, err := Parse(p.String())
	if err != nil {
		t.Fatalf("Parse(%q) of %#v: %v", p.String(), p, err)
	}
	if again != p {
		t.Fatalf("Parse(%q) = %#v, want %#v", p.String(), again, p)
	}
}

// checkRead runs Read on in with format f and checks its promises: errors carry a line, every
// proxy is valid and unique, and writing the proxies in each format reads back the same list.
func checkRead(t *testing.T, in []byte, f Format) {
	got, errs, err := Read(bytes.NewReader(in), "fuzz", f)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	lines := bytes.Count(in, []byte("\n")) + 1
	for i, e := range errs {
		if e.Line < 1 || e.Line > lines || e.File != "fuzz" || e.Err == nil {
			t.Fatalf("bad LineError %#v (input of %d lines)", e, lines)
		}
		if i > 0 && errs[i-1].Line > e.Line {
			t.Fatalf("errors out of line order: %v before %v", errs[i-1], e)
		}
		var le *LineError
		if !errors.As(e, &le) || e.Error() == "" {
			t.Fatalf("LineError does not work as an error: %#v", e)
		}
	}
	// Scan sees the same proxies (with duplicates) and the same bad lines.
	var scanned []Proxy
	nerr := 0
	if err := Scan(bytes.NewReader(in), "fuzz", f, func(p Proxy) { scanned = append(scanned, p) }, func(*LineError) { nerr++ }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if nerr != len(errs) || !reflect.DeepEqual(dedup(scanned), got) {
		t.Fatalf("Scan: %d errors, proxies %v; Read: %d errors, %v", nerr, scanned, len(errs), got)
	}
	seen := map[Proxy]bool{}
	for _, p := range got {
		checkValue(t, p)
		if seen[p] {
			t.Fatalf("duplicate %#v", p)
		}
		seen[p] = true
	}
	for _, wf := range []Format{Text, JSONL, CSV} {
		var buf bytes.Buffer
		w := NewWriter(&buf, wf)
		for _, p := range got {
			if err := w.Write(p, Field{"n", 1}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		back, errs, err := Read(&buf, "again", Auto)
		if err != nil || len(errs) > 0 {
			t.Fatalf("reading %s output back: %v %v\n%s", wf, err, errs, buf.String())
		}
		if len(got) == 0 && len(back) == 0 {
			continue
		}
		if !reflect.DeepEqual(back, got) {
			t.Fatalf("%s round trip:\n got %#v\nwant %#v\n%s", wf, back, got, buf.String())
		}
	}
}

// dedup drops repeated proxies, keeping the first of each, as Read does.
func dedup(ps []Proxy) []Proxy {
	seen := map[Proxy]bool{}
	var out []Proxy
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"http://1.2.3.4:8080", "socks5://u:p@[2001:db8::1]:1080", "socks5h://h:1/", "1.2.3.4:80",
		"[::1]:8080", "1.2.3.4:80:user:pass", "user:pass@1.2.3.4:80", "h:1:u:p@h2:2", "u@x:p@h:1",
		"http://u:%41%zz@h:1", "::1:8080", "1.2.3.4:99999", "", "ftp://x:1", "[::ffff:1.2.3.4]:1",
		"ab:12:cd:ef:1:2:3:4", "a:1::", "h:1:u:a://b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Err == nil || le.Line != 0 {
				t.Fatalf("Parse(%q) error %#v", s, err)
			}
			return
		}
		checkValue(t, p)
	})
}

func FuzzReadText(f *testing.F) {
	f.Add([]byte("\ufeff# list\r\nhttp://1.2.3.4:8080 # c\n\n5.6.7.8:3128:bob:pw\nbob:pw@[::1]:80\n1.2.3.4:0\n"))
	f.Add([]byte("socks5://u:p%20w@h:1\nsocks5://u:p%20w@h:1\n"))
	f.Fuzz(func(t *testing.T, in []byte) { checkRead(t, in, Text) })
}

func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(`{"url":"http://1.2.3.4:8080","class":"alive"}` + "\n" + `{"ip":"::1","port":"80","user":"a b","pass":"c"}` + "\n"))
	f.Add([]byte(`{"protocol":"socks5","host":"h","port":1,"username":"u:x","password":"\u0000"}` + "\n# c\n{}\n[]"))
	f.Fuzz(func(t *testing.T, in []byte) { checkRead(t, in, JSONL) })
}

func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("ip,port,protocol,username,password\n1.2.3.4,80,http,,\n::1,1,,\" a\",b\n"))
	f.Add([]byte("proxy\nhttp://h:1\n\"x\"y\n"))
	f.Add([]byte("host;port\nh;1;extra\n"))
	f.Add([]byte("host,port\n1.2.3.4,80\n\"5.6.7.8,81\n1.2.3.4,99999\n9.9.9.9,82\n"))
	f.Add([]byte("host,port,note\n1.2.3.4,80,\"a\nb \"\"c\"\"\"\n# \"\n\"1.2.3.4\"x,1\n"))
	f.Fuzz(func(t *testing.T, in []byte) { checkRead(t, in, CSV) })
}

// FuzzQuoteOpen compares quoteOpen with encoding/csv itself: after a line that quoteOpen says
// leaves a quoted field open, csv must not start a record on the next line; after one it says
// closes everything, csv must read the next line as a record of its own.
func FuzzQuoteOpen(f *testing.F) {
	for _, s := range []string{`a,b`, `"a`, `"a""`, `"a"x`, `a,x"b`, " \"a", "a,\u3000\"b", `"a"",b"`, `""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\r\n") || strings.HasPrefix(line, "#") {
			return // the feeder splits lines itself and never asks about a comment line
		}
		r := csv.NewReader(strings.NewReader(line + "\nnext,row\n"))
		r.FieldsPerRecord, r.TrimLeadingSpace, r.Comment = -1, true, '#'
		secondStarts := false
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err == nil {
				if l, _ := r.FieldPos(0); l == 2 && len(rec) == 2 && rec[0] == "next" {
					secondStarts = true
				}
			}
		}
		if open := quoteOpen(line, ',', false); open == secondStarts {
			t.Fatalf("quoteOpen(%q) = %v, but csv read the next line as a record: %v", line, open, secondStarts)
		}
	})
}

func BenchmarkRead(b *testing.B) {
	const n = 100_000
	inputs := map[Format][]byte{}
	for _, f := range []Format{Text, JSONL, CSV} {
		var buf bytes.Buffer
		w := NewWriter(&buf, f)
		for i := range n {
			p := Proxy{Scheme: Schemes()[i%5], Host: "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255), Port: uint16(1024 + i%60000)}
			if i%3 == 0 {
				p.User, p.Password = "user"+strconv.Itoa(i), "pw"
			}
			_ = w.Write(p, Field{"class", "alive"}, Field{"latency_ms", i % 1000})
		}
		_ = w.Flush()
		inputs[f] = buf.Bytes()
	}
	for _, f := range []Format{Text, JSONL, CSV} {
		b.Run(string(f), func(b *testing.B) {
			in := inputs[f]
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				got, errs, err := Read(bytes.NewReader(in), "bench", Auto)
				if err != nil || len(errs) > 0 || len(got) != n {
					b.Fatalf("Read: %d proxies, %v, %v", len(got), errs, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/line")
		})
	}
}
