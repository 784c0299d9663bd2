package api_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/api"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testdb"
)

var fuzzNow = time.Unix(1_800_000_000, 0)

// FuzzParseQuery: any query string either parses into a filter within its bounds or is refused
// with an error naming a parameter; never a panic.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "protocol=http,socks5&country=de&anonymity=elite", "max_latency=500ms&checked_within=7d",
		"class=all&limit=1000", "class=refused,timeout", "cursor=WyJhbGl2ZSIsMSwiMS4yLjMuNDo4MCIsIiJd", "checked_within=1e308",
		"max_latency=NaN", "max_latency=1e-9", "limit=-1", "credentials=1", "country=%00%01", "protocol=" + strings.Repeat("http,", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := api.ParseQuery(v, fuzzNow)
		if err != nil {
			if pe, ok := err.(*api.ParamError); !ok || pe.Param == "" || !strings.Contains(err.Error(), pe.Param) {
				t.Fatalf("%q: error %v does not name a parameter", raw, err)
			}
			return
		}
		fl := q.Filter
		if fl.Limit < 1 || fl.Limit > api.MaxLimit || fl.MaxLatency < 0 || fl.CheckedSince.After(fuzzNow) {
			t.Fatalf("%q: out of bounds: %+v", raw, fl)
		}
		if !fl.CheckedSince.IsZero() && fuzzNow.Sub(fl.CheckedSince) > 10*366*24*time.Hour {
			t.Fatalf("%q: checked_within beyond ten years: %v", raw, fl.CheckedSince)
		}
		for _, c := range fl.Countries {
			if len(c) != 2 {
				t.Fatalf("%q: country %q", raw, c)
			}
		}
	})
}

// FuzzParsePickHistory: the /pick and history parameters and the address, likewise.
func FuzzParsePickHistory(f *testing.F) {
	for _, s := range [][2]string{{"policy=round-robin&among=5", "10.0.0.1:80"}, {"scheme=&since=1h&limit=3", "[2001:db8::1]:1080"},
		{"policy=RANDOM", "host.example:8080"}, {"scheme=socks5", "10.0.0.1:80:u:p"}, {"", "[fe80::1%eth0]:80"}, {"", ":80"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, raw, addr string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if q, err := api.ParsePick(v, fuzzNow); err == nil {
			if q.Among < 1 || q.Among > api.MaxAmong || (q.Policy != api.PolicyFastest && q.Policy != api.PolicyRandom && q.Policy != api.PolicyRoundRobin) {
				t.Fatalf("%q: %+v", raw, q)
			}
		}
		h, err := api.ParseHistory(addr, v, fuzzNow)
		if err != nil {
			return
		}
		if h.Filter.Limit < 1 || h.Filter.Limit > api.MaxHistory || strings.ContainsAny(h.Addr, "@ /?#") {
			t.Fatalf("%q %q: %+v", raw, addr, h)
		}
		if again, err := api.ParseAddr(h.Addr); err != nil || again != h.Addr {
			t.Fatalf("address %q -> %q is not canonical: %q %v", addr, h.Addr, again, err)
		}
	})
}

// FuzzCursor: a cursor round-trips; anything else is refused, never misread as a cursor.
func FuzzCursor(f *testing.F) {
	f.Add("alive", int64(120), "10.0.0.1:80", "", "")
	f.Add("timeout", int64(-5), "[::1]:80", "socks5", "eyJ9")
	f.Fuzz(func(t *testing.T, class string, total int64, addr, scheme, raw string) {
		c := pool.Cursor{Class: class, TotalMS: total, Addr: addr, Scheme: scheme}
		enc := api.EncodeCursor(c)
		got, err := api.ParseCursor(enc)
		if c.IsZero() {
			if enc != "" || err != nil || !got.IsZero() {
				t.Fatalf("zero cursor: %q %v %v", enc, got, err)
			}
		} else if len(enc) <= 2048 && (err != nil || got != c) {
			t.Fatalf("%+v: encoded %q, decoded %+v, %v", c, enc, got, err)
		}
		if got, err := api.ParseCursor(raw); err == nil && raw != "" && got.IsZero() {
			t.Fatalf("%q: read as the zero cursor", raw)
		}
	})
}

// FuzzEnqueueBody: any body, raw or multipart, is enqueued (201: a multipart body may carry a
// judge and a list) or refused with 400 or 413 and a JSON error; never a panic or a 5xx.
func FuzzEnqueueBody(f *testing.F) {
	f.Add("127.0.0.1:80\nhttp://u:p@127.0.0.2:8080\n", "text/plain")
	f.Add("{\"proxy\": \"socks5://127.0.0.3:1080\"}\n", "application/x-ndjson")
	f.Add("host,port\n127.0.0.1,80\n", "text/csv")
	f.Add("--x\r\nContent-Disposition: form-data; name=\"list\"\r\n\r\n127.0.0.1:80\r\n--x--\r\n", "multipart/form-data; boundary=x")
	f.Add("--x\r\nContent-Disposition: form-data; name=\"judge\"\r\n\r\nhttp://127.0.0.2/\r\n--x\r\n", "multipart/form-data; boundary=x")
	st := testdb.Open(f, queue.EngineSQLite)
	srv, err := api.New(api.Config{Store: st, MaxEnqueueBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body, ctype string) {
		r := httptest.NewRequest("POST", "http://127.0.0.1/api/v1/enqueue", strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		switch {
		case w.Code == http.StatusCreated:
		case w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge, !strings.Contains(w.Body.String(), `"error"`):
			t.Fatalf("%q (%q): %d %s", body, ctype, w.Code, w.Body.String())
		}
	})
}
