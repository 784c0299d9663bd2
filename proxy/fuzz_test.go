package proxy

import (
	"bytes"
	"errors"
	"reflect"
	"strconv"
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
	for _, e := range errs {
		if e.Line < 1 || e.File != "fuzz" || e.Err == nil {
			t.Fatalf("bad LineError %#v", e)
		}
		var le *LineError
		if !errors.As(e, &le) || e.Error() == "" {
			t.Fatalf("LineError does not work as an error: %#v", e)
		}
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
	f.Fuzz(func(t *testing.T, in []byte) { checkRead(t, in, CSV) })
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
