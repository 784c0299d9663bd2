package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/api"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/serve"
	"github.com/proxyline/proxyline/internal/testdb"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// selfSignedPEM is a CA certificate of its own, as PEM.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// client calls the API as a browser or curl would, through the gate of internal/serve: with
// credentials alice:pw when auth is set (and then sends them), on loopback without any otherwise.
type client struct {
	t    *testing.T
	h    http.Handler
	auth bool
}

func newClient(t *testing.T, st *queue.Store, auth bool, cfg api.Config) *client {
	t.Helper()
	cfg.Store = st
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := serve.Options{Listen: "127.0.0.1:0"}
	if auth {
		o.Auth = "alice:pw"
	}
	g, err := o.Gate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, h: g.Wrap(srv), auth: auth}
}

// do sends a request and returns the status and the body.
func (c *client) do(method, target string, body io.Reader, set func(*http.Request)) (int, []byte) {
	c.t.Helper()
	r := httptest.NewRequest(method, "http://127.0.0.1:8081"+target, body)
	if c.auth {
		r.SetBasicAuth("alice", "pw")
	}
	if set != nil {
		set(r)
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	fromGate := w.Code == 403 && strings.HasPrefix(w.Body.String(), "forbidden") // internal/serve's refusal
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && !fromGate {
		c.t.Errorf("%s %s: content type %q", method, target, ct)
	}
	return w.Code, w.Body.Bytes()
}

// get sends a GET and decodes a 200 answer into v; any other status fails the test.
func (c *client) get(target string, v any) {
	c.t.Helper()
	code, body := c.do("GET", target, nil, nil)
	if code != 200 {
		c.t.Fatalf("GET %s: %d %s", target, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		c.t.Fatalf("GET %s: %v: %s", target, err, body)
	}
}

// errorOf returns the error message of a JSON error answer.
func errorOf(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error: %s", body)
	}
	return e.Error
}

// row is one proxy put into the pool by fill.
type row struct {
	given     string
	found     proxy.Scheme
	class     check.Class
	anon      check.Anonymity
	ms        int
	age       time.Duration
	country   string
	jobOffset int64
}

var rows = []row{
	{"http://10.0.0.1:8080", proxy.HTTP, check.Alive, check.Elite, 40, time.Minute, "DE", 0},
	{"socks5://u:Zq9pw@10.0.0.2:1080", proxy.SOCKS5, check.Alive, check.Anonymous, 90, time.Minute, "FR", 0},
	{"10.0.0.3:3128:bob:Zq9pw", proxy.HTTP, check.Alive, check.Transparent, 200, 3 * time.Hour, "DE", 0},
	{"https://10.0.0.4:443", proxy.HTTPS, check.Alive, check.Elite, 300, time.Minute, "", 0},
	{"http://10.0.0.5:80", proxy.HTTP, check.Refused, "", 2, time.Minute, "US", 0},
	{"socks5://[2001:db8::7]:1080", proxy.SOCKS5, check.Alive, check.Elite, 60, time.Minute, "NL", 0},
}

// fill records rows into the pool at now, plus an older failed check of the first.
func fill(t *testing.T, db pool.DB, now time.Time) {
	t.Helper()
	ctx := context.Background()
	var geo []pool.Geo
	for i, r := range rows {
		p, err := proxy.Parse(r.given)
		if err != nil {
			t.Fatal(err)
		}
		found := p
		found.Scheme = r.found
		res := check.Result{Proxy: found, Class: r.class, Anonymity: r.anon, Total: time.Duration(r.ms) * time.Millisecond,
			Connect: time.Millisecond, CheckedAt: now.Add(-r.age)}
		if r.class != check.Alive {
			res.Err = "connection refused"
		}
		if err := pool.Record(ctx, db, pool.Source{JobID: int64(10 + i), Attempt: 1, Worker: "host/1/1"}, []pool.Check{{Given: p, Result: res}}); err != nil {
			t.Fatal(err)
		}
		if r.country != "" {
			geo = append(geo, pool.Geo{Addr: p.Addr(), Country: r.country, City: "C", ASN: 64500})
		}
		if i == 0 {
			old := res
			old.Class, old.Err, old.CheckedAt = check.Timeout, "timed out", now.Add(-2*time.Hour)
			if err := pool.Record(ctx, db, pool.Source{JobID: 1, Attempt: 2, Worker: "host/1/1"}, []pool.Check{{Given: p, Result: old}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := pool.RecordGeo(ctx, db, geo, now); err != nil {
		t.Fatal(err)
	}
}

func addrs(ps []api.Proxy) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Addr)
	}
	return out
}

func TestProxies(t *testing.T) {
	t.Parallel()
	for _, engine := range testdb.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := testdb.Open(t, engine)
			now := time.Now()
			fill(t, st.DB(), now)
			c := newClient(t, st, false, api.Config{})
			ok := []struct {
				query string
				want  []string
			}{
				{"", []string{"10.0.0.1:8080", "[2001:db8::7]:1080", "10.0.0.2:1080", "10.0.0.3:3128", "10.0.0.4:443"}},
				{"?protocol=socks5", []string{"[2001:db8::7]:1080", "10.0.0.2:1080"}},
				{"?protocol=https,SOCKS5&protocol=http", []string{"10.0.0.1:8080", "[2001:db8::7]:1080", "10.0.0.2:1080", "10.0.0.3:3128", "10.0.0.4:443"}},
				{"?country=de", []string{"10.0.0.1:8080", "10.0.0.3:3128"}},
				{"?anonymity=elite", []string{"10.0.0.1:8080", "[2001:db8::7]:1080", "10.0.0.4:443"}},
				{"?max_latency=100ms", []string{"10.0.0.1:8080", "[2001:db8::7]:1080", "10.0.0.2:1080"}},
				{"?max_latency=60", []string{"10.0.0.1:8080", "[2001:db8::7]:1080"}},
				{"?checked_within=1h", []string{"10.0.0.1:8080", "[2001:db8::7]:1080", "10.0.0.2:1080", "10.0.0.4:443"}},
				{"?checked_within=0.5d&protocol=http&anonymity=transparent", []string{"10.0.0.3:3128"}},
				{"?class=refused", []string{"10.0.0.5:80"}},
				{"?class=all", []string{"10.0.0.1:8080", "[2001:db8::7]:1080", "10.0.0.2:1080", "10.0.0.3:3128", "10.0.0.4:443", "10.0.0.5:80"}},
				{"?country=JP", nil},
			}
			for _, tt := range ok {
				var page api.Page
				c.get("/api/v1/proxies"+tt.query, &page)
				if got := addrs(page.Proxies); !slices.Equal(got, tt.want) || page.Count != len(tt.want) || page.NextCursor != "" {
					t.Errorf("%q: %v (count %d, next %q), want %v", tt.query, got, page.Count, page.NextCursor, tt.want)
				}
			}
			// Paging: two at a time, following next_cursor, gives the same list.
			var got []string
			target := "/api/v1/proxies?class=all&limit=2"
			for range 10 {
				var page api.Page
				c.get(target, &page)
				got = append(got, addrs(page.Proxies)...)
				if page.NextCursor == "" {
					break
				}
				target = "/api/v1/proxies?class=all&limit=2&cursor=" + page.NextCursor
			}
			if want := ok[10].want; !slices.Equal(got, want) {
				t.Errorf("paged: %v, want %v", got, want)
			}
			// Geo and the other fields.
			var page api.Page
			c.get("/api/v1/proxies?country=NL", &page)
			if len(page.Proxies) != 1 {
				t.Fatalf("NL: %+v", page)
			}
			p := page.Proxies[0]
			if p.Proxy != "socks5://[2001:db8::7]:1080" || p.Protocol != "socks5" || p.Scheme != "socks5" || p.Country != "NL" ||
				p.ASN != 64500 || p.TotalMS != 60 || p.ConnectMS != 1 || p.Anonymity != "elite" || p.Class != "alive" || p.JobID != 15 {
				t.Errorf("row %+v", p)
			}
		})
	}
}

// TestBadParameters: every bad parameter is a 400 whose message names it.
func TestBadParameters(t *testing.T) {
	t.Parallel()
	st := testdb.Open(t, queue.EngineSQLite)
	c := newClient(t, st, false, api.Config{})
	for _, tt := range []struct{ target, param string }{
		{"/api/v1/proxies?protcol=http", "protcol"},
		{"/api/v1/proxies?protocol=gopher", "protocol"},
		{"/api/v1/proxies?class=dead,all", "class"},
		{"/api/v1/proxies?class=zombie", "class"},
		{"/api/v1/proxies?anonymity=invisible", "anonymity"},
		{"/api/v1/proxies?country=Germany", "country"},
		{"/api/v1/proxies?max_latency=fast", "max_latency"},
		{"/api/v1/proxies?max_latency=-5ms", "max_latency"},
		{"/api/v1/proxies?max_latency=0", "max_latency"},
		{"/api/v1/proxies?checked_within=1y", "checked_within"},
		{"/api/v1/proxies?checked_within=99999999d", "checked_within"},
		{"/api/v1/proxies?limit=0", "limit"},
		{"/api/v1/proxies?limit=1001", "limit"},
		{"/api/v1/proxies?limit=ten", "limit"},
		{"/api/v1/proxies?cursor=AAAA", "cursor"},
		{"/api/v1/proxies?credentials=maybe", "credentials"},
		{"/api/v1/pick?policy=best", "policy"},
		{"/api/v1/pick?among=0", "among"},
		{"/api/v1/pick?limit=3", "limit"},
		{"/api/v1/proxies/not-an-address/history", "addr"},
		{"/api/v1/proxies/10.0.0.1:0/history", "addr"},
		{"/api/v1/proxies/u:p@10.0.0.1:80/history", "addr"},
		{"/api/v1/proxies/10.0.0.1:80/history?scheme=ftp", "scheme"},
		{"/api/v1/proxies/10.0.0.1:80/history?since=yesterday", "since"},
		{"/api/v1/sources?all=1", "all"},
		{"/api/v1/queue?x=1", "x"},
	} {
		code, body := c.do("GET", tt.target, nil, nil)
		if msg := errorOf(t, body); code != 400 || !strings.Contains(msg, "parameter "+tt.param+":") {
			t.Errorf("GET %s: %d %q, want 400 naming %s", tt.target, code, msg, tt.param)
		}
	}
	for _, tt := range []struct {
		method, target string
		want           int
	}{
		{"GET", "/api/v1/nothing", 404},
		{"GET", "/api/v2/proxies", 404},
		{"POST", "/api/v1/proxies", 405},
		{"DELETE", "/api/v1/queue", 405},
		{"GET", "/api/v1/enqueue", 405},
		{"GET", "/api/v1/proxies/10.9.9.9:80/history", 404},
		{"GET", "/api/v1/pick", 404},
	} {
		code, body := c.do(tt.method, tt.target, nil, nil)
		if code != tt.want {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.target, code, body, tt.want)
		}
		errorOf(t, body)
	}
}

// TestCredentials: passwords are masked, unless credentials=1 comes from a client the gate
// authenticated; asked for without authentication, 403.
func TestCredentials(t *testing.T) {
	t.Parallel()
	st := testdb.Open(t, queue.EngineSQLite)
	fill(t, st.DB(), time.Now())
	open := newClient(t, st, false, api.Config{})
	authed := newClient(t, st, true, api.Config{})
	for _, target := range []string{"/api/v1/proxies?class=all", "/api/v1/pick?protocol=socks5&country=FR", "/api/v1/proxies/10.0.0.3:3128/history"} {
		for _, c := range []*client{open, authed} {
			code, body := c.do("GET", target, nil, nil)
			if code != 200 || bytes.Contains(body, []byte("Zq9pw")) || !bytes.Contains(body, []byte("xxxxx")) {
				t.Errorf("GET %s (auth %v): %d, password not masked: %s", target, c.auth, code, body)
			}
		}
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		code, body := open.do("GET", target+sep+"credentials=1", nil, nil)
		if code != 403 || bytes.Contains(body, []byte("Zq9pw")) || !strings.Contains(errorOf(t, body), "authenticated") {
			t.Errorf("GET %s with credentials=1, no authentication: %d %s", target, code, body)
		}
		code, body = authed.do("GET", target+sep+"credentials=1", nil, nil)
		if code != 200 || !bytes.Contains(body, []byte("Zq9pw")) {
			t.Errorf("GET %s with credentials=1, authenticated: %d %s", target, code, body)
		}
	}
	var h api.History
	open.get("/api/v1/proxies/10.0.0.3:3128/history", &h)
	// Given bare, stored with the protocol the check found.
	if len(h.Current) != 1 || h.Current[0].Proxy != "http://bob:xxxxx@10.0.0.3:3128" {
		t.Errorf("bare proxy with credentials shown as %+v", h.Current)
	}
}

func TestHistory(t *testing.T) {
	t.Parallel()
	for _, engine := range testdb.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := testdb.Open(t, engine)
			fill(t, st.DB(), time.Now())
			c := newClient(t, st, false, api.Config{})
			var h api.History
			c.get("/api/v1/proxies/10.0.0.1:8080/history", &h)
			if h.Addr != "10.0.0.1:8080" || len(h.Current) != 1 || len(h.History) != 2 ||
				h.History[0].Class != "alive" || h.History[1].Class != "timeout" || h.History[1].Attempt != 2 ||
				h.History[0].Worker != "host/1/1" || !h.History[0].CheckedAt.After(h.History[1].CheckedAt) {
				t.Errorf("history %+v", h)
			}
			c.get("/api/v1/proxies/10.0.0.1:8080/history?since=1h", &h)
			if len(h.History) != 1 {
				t.Errorf("since=1h: %+v", h.History)
			}
			c.get("/api/v1/proxies/10.0.0.1:8080/history?limit=1", &h)
			if len(h.History) != 1 || h.History[0].Class != "alive" {
				t.Errorf("limit=1: %+v", h.History)
			}
			// An IPv6 address, escaped as a browser does, or not.
			for _, p := range []string{"%5B2001:db8::7%5D:1080", "[2001:db8:0::7]:1080"} {
				c.get("/api/v1/proxies/"+p+"/history", &h)
				if h.Addr != "[2001:db8::7]:1080" || len(h.History) != 1 {
					t.Errorf("%s: %+v", p, h)
				}
			}
			// scheme= selects one entry of the address; empty is the bare one (none here).
			c.get("/api/v1/proxies/10.0.0.3:3128/history?scheme=", &h)
			if len(h.Current) != 1 || h.Current[0].Scheme != "" || h.Current[0].Protocol != "http" {
				t.Errorf("scheme=: %+v", h)
			}
			code, body := c.do("GET", "/api/v1/proxies/10.0.0.3:3128/history?scheme=socks5", nil, nil)
			if code != 404 {
				t.Errorf("scheme=socks5 of a bare proxy: %d %s", code, body)
			}
		})
	}
}

func TestPick(t *testing.T) {
	t.Parallel()
	st := testdb.Open(t, queue.EngineSQLite)
	fill(t, st.DB(), time.Now())
	c := newClient(t, st, false, api.Config{})
	var p api.Proxy
	c.get("/api/v1/pick", &p)
	if p.Addr != "10.0.0.1:8080" {
		t.Errorf("fastest: %s", p.Addr)
	}
	c.get("/api/v1/pick?policy=fastest&protocol=socks5", &p)
	if p.Addr != "[2001:db8::7]:1080" {
		t.Errorf("fastest socks5: %s", p.Addr)
	}
	// Round-robin walks the `among` fastest in order and starts over.
	var got []string
	for range 6 {
		c.get("/api/v1/pick?policy=round-robin&among=3", &p)
		got = append(got, p.Addr)
	}
	want := []string{"10.0.0.1:8080", "[2001:db8::7]:1080", "10.0.0.2:1080", "10.0.0.1:8080", "[2001:db8::7]:1080", "10.0.0.2:1080"}
	if !slices.Equal(got, want) {
		t.Errorf("round-robin: %v, want %v", got, want)
	}
	seen := map[string]bool{}
	for range 60 {
		c.get("/api/v1/pick?policy=random&anonymity=elite", &p)
		seen[p.Addr] = true
		if p.Anonymity != "elite" || p.Class != "alive" {
			t.Fatalf("random picked %+v", p)
		}
	}
	if len(seen) < 2 {
		t.Errorf("random picked only %v in 60 picks of 3", seen)
	}
	code, body := c.do("GET", "/api/v1/pick?country=JP", nil, nil)
	if code != 404 || !strings.Contains(errorOf(t, body), "no live proxy") {
		t.Errorf("no match: %d %s", code, body)
	}
}

// enqueueBody builds a multipart enqueue: fields in order, then the list.
func enqueueBody(t *testing.T, fields [][2]string, list string) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, f := range fields {
		fw, err := mw.CreateFormFile(f[0], f[0]+".txt")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(fw, f[1])
	}
	if list != "" {
		fw, err := mw.CreateFormFile("list", "list.txt")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(fw, list)
	}
	mw.Close()
	return &b, mw.FormDataContentType()
}

func TestEnqueue(t *testing.T) {
	t.Parallel()
	st := testdb.Open(t, queue.EngineSQLite)
	c := newClient(t, st, false, api.Config{MaxEnqueueBytes: 4096, MaxEnqueueProxies: 50})
	judge := url.QueryEscape("http://127.0.0.2:8080/")
	post := func(query, ctype string, body io.Reader, set func(*http.Request)) (int, []byte) {
		return c.do("POST", "/api/v1/enqueue"+query, body, func(r *http.Request) {
			if ctype != "" {
				r.Header.Set("Content-Type", ctype)
			}
			if set != nil {
				set(r)
			}
		})
	}
	list := "http://127.0.0.3:8080\nsocks5://u:Zq9pw@127.0.0.4:1080\n127.0.0.5:3128\n127.0.0.5:3128\n"
	code, body := post("?judge="+judge+"&chunk=2&timeout=5s&name=mine", "text/plain", strings.NewReader(list), nil)
	var e api.Enqueued
	if code != 201 || json.Unmarshal(body, &e) != nil || e.Jobs != 2 || e.Proxies != 3 || len(e.JobIDs) != 2 {
		t.Fatalf("text list: %d %s", code, body)
	}
	jsonl := `{"proxy": "http://127.0.0.6:8080"}` + "\n" + `{"host": "127.0.0.7", "port": 1080, "protocol": "socks5"}` + "\n"
	code, body = post("?judge="+judge+"&format=jsonl", "application/x-ndjson", strings.NewReader(jsonl), nil)
	if code != 201 || json.Unmarshal(body, &e) != nil || e.Proxies != 2 {
		t.Fatalf("jsonl list: %d %s", code, body)
	}
	mp, ctype := enqueueBody(t, [][2]string{{"judge", "https://127.0.0.2:8443/"}, {"judge_ca", selfSignedPEM(t)}, {"judge_keyword", "ok"}}, "127.0.0.8:80\n")
	code, body = post("", ctype, mp, nil)
	if code != 201 || json.Unmarshal(body, &e) != nil || e.Proxies != 1 {
		t.Fatalf("multipart: %d %s", code, body)
	}
	// A CA that is not a certificate is refused as enqueue --judge-ca refuses it.
	fake := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	mp, ctype = enqueueBody(t, [][2]string{{"judge", "https://127.0.0.2:8443/"}, {"judge_ca", fake}}, "127.0.0.8:80\n")
	if code, body = post("", ctype, mp, nil); code != 400 || !strings.Contains(string(body), "judge_ca") {
		t.Fatalf("multipart with a bad CA: %d %s", code, body)
	}
	s, err := st.Status(context.Background())
	if err != nil || s.Jobs["available"] != 4 {
		t.Fatalf("status after enqueue: %v %v", s.Jobs, err)
	}

	bad := []struct {
		name, query, ctype string
		body               io.Reader
		want               int
		says               string
	}{
		{"no judge", "", "text/plain", strings.NewReader(list), 400, "parameter judge: required"},
		{"judge with credentials", "?judge=" + url.QueryEscape("http://u:p@127.0.0.2/"), "", strings.NewReader(list), 400, "parameter judge"},
		{"judge not http", "?judge=" + url.QueryEscape("ftp://127.0.0.2/"), "", strings.NewReader(list), 400, "parameter judge"},
		{"bad timeout", "?judge=" + judge + "&timeout=5", "", strings.NewReader(list), 400, "parameter timeout"},
		{"bad status", "?judge=" + judge + "&judge_status=700", "", strings.NewReader(list), 400, "parameter judge_status"},
		{"bad chunk", "?judge=" + judge + "&chunk=0", "", strings.NewReader(list), 400, "parameter chunk"},
		{"bad format", "?judge=" + judge + "&format=xml", "", strings.NewReader(list), 400, "parameter format"},
		{"unknown parameter", "?judge=" + judge + "&chunks=5", "", strings.NewReader(list), 400, "parameter chunks"},
		{"empty", "?judge=" + judge, "", strings.NewReader("# nothing\n"), 400, "no proxy"},
		{"too large", "?judge=" + judge, "", strings.NewReader(strings.Repeat("127.0.0.9:80\n", 400)), 413, "4096 bytes"},
		{"too many", "?judge=" + judge, "", strings.NewReader(strings.Repeat("127.0.0.9:80\n", 51)), 413, "more than the 50"},
		{"multipart without list", "", "", nil, 400, "parameter list"},
	}
	for _, tt := range bad {
		body, ctype := tt.body, tt.ctype
		if body == nil {
			body, ctype = enqueueBody(t, [][2]string{{"judge", "http://127.0.0.2/"}}, "")
		}
		code, out := post(tt.query, ctype, body, nil)
		if msg := errorOf(t, out); code != tt.want || !strings.Contains(msg, tt.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tt.name, code, msg, tt.want, tt.says)
		}
	}
	// Bad lines: named by number, without their text (a password), nothing enqueued.
	code, out := post("?judge="+judge, "", strings.NewReader("http://127.0.0.3:8080\nsocks5://u:Zq9pw@127.0.0.4:99999\n10.0.0.1:80:u:Zq9pw extra\n"), nil)
	var badLines struct {
		Error    string        `json:"error"`
		BadLines []api.BadLine `json:"bad_lines"`
	}
	if code != 400 || json.Unmarshal(out, &badLines) != nil || len(badLines.BadLines) != 2 || badLines.BadLines[0].Line != 2 ||
		badLines.BadLines[0].Field != "port" || badLines.BadLines[1].Line != 3 || bytes.Contains(out, []byte("Zq9pw")) {
		t.Errorf("bad lines: %d %s", code, out)
	}
	// A page of another site may not enqueue (the gate's cross-origin rule).
	code, _ = post("?judge="+judge, "", strings.NewReader(list), func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") })
	if code != 403 {
		t.Errorf("cross-origin enqueue: %d", code)
	}
	if s, err := st.Status(context.Background()); err != nil || s.Jobs["available"] != 4 {
		t.Errorf("a refused enqueue enqueued: %v %v", s.Jobs, err)
	}
}
