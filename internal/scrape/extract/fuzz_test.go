package extract

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/proxy"
)

// seeds adds every file of testdata/ as a seed.
func seeds(f *testing.F) {
	f.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "*.*"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("1.2.3.4:80\n[::1]:1\n10.0.0.0/24:80\nsocks5://a:b@1.1.1.1:1\n"))
}

// checkEmit is the invariant every extractor keeps: whatever it emits is a valid proxy that
// reads back to itself, an IP address unless names were asked for, and no more than the text
// could hold plus the CIDR cap.
func checkEmit(t *testing.T, name string, b []byte, run func(Options, func(proxy.Proxy)) error) {
	o := Options{CIDRCap: 1024}
	n := 0
	err := run(o, func(p proxy.Proxy) {
		n++
		q, err := proxy.Parse(p.String())
		if err != nil || q != p {
			t.Fatalf("%s emitted %+v, which reads back as %+v, %v", name, p, q, err)
		}
		if _, err := netip.ParseAddr(p.Host); err != nil {
			t.Fatalf("%s emitted a host name %q without Hostnames", name, p.Host)
		}
	})
	_ = err // errors are fine; panics and bad candidates are not
	if limit := len(b) + o.CIDRCap; n > limit {
		t.Fatalf("%s emitted %d candidates from %d bytes", name, n, len(b))
	}
}

func FuzzText(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkEmit(t, "Text", b, func(o Options, e func(proxy.Proxy)) error { return Text(b, o, e) })
	})
}

func FuzzHTML(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkEmit(t, "HTML", b, func(o Options, e func(proxy.Proxy)) error { return HTML(b, o, e) })
	})
}

func FuzzCSV(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkEmit(t, "CSV", b, func(o Options, e func(proxy.Proxy)) error { return CSV(b, o, e) })
	})
}

func FuzzJSON(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkEmit(t, "JSON", b, func(o Options, e func(proxy.Proxy)) error { return JSON(b, o, e) })
		checkEmit(t, "JSON path", b, func(o Options, e func(proxy.Proxy)) error {
			o.JSONPath = "data.proxies"
			return JSON(b, o, e)
		})
	})
}

func FuzzBody(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkEmit(t, "Body", b, func(o Options, e func(proxy.Proxy)) error {
			_, err := Body(b, "", Auto, o, e)
			return err
		})
	})
}

// FuzzFastIPv4 holds the fast path to proxy.Parse: same answer for every host:port.
func FuzzFastIPv4(f *testing.F) {
	for _, s := range [][2]string{{"1.2.3.4", "80"}, {"01.2.3.4", "80"}, {"1.2.3.4", "0"}, {"255.255.255.255", "65535"},
		{"256.1.1.1", "1"}, {"1.2.3", "1"}, {"1.2.3.4.5", "1"}, {"0.0.0.0", "00080"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, host, port string) {
		for _, c := range port {
			if c < '0' || c > '9' {
				return // the scanner only ever gives digits
			}
		}
		p, ok := fastIPv4([]byte(host), []byte(port))
		q, err := proxy.Parse(host + ":" + port)
		if ok && (err != nil || p != q) {
			t.Fatalf("fastIPv4(%q, %q) = %+v; Parse = %+v, %v", host, port, p, q, err)
		}
		if !ok && err == nil && !strings.ContainsAny(host, "[]:/") && looksIPv4([]byte(host)) && q.Scheme == proxy.Unknown && q.User == "" {
			if _, e := netip.ParseAddr(q.Host); e == nil {
				t.Fatalf("fastIPv4(%q, %q) refused what Parse takes: %+v", host, port, q)
			}
		}
	})
}
