package judge

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m)
}

func TestHandler(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Handler(nil))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name       string
		method     string
		path       string
		headers    map[string]string
		wantStatus int
		wantToken  string
	}{
		{"query token", "GET", "/?t=abc", nil, 200, "abc"},
		{"header token", "GET", "/any/path", map[string]string{"x-proxyline-token": "hdr"}, 200, "hdr"},
		{"query wins", "GET", "/p?t=q&x=1", map[string]string{"X-Proxyline-Token": "hdr"}, 200, "q"},
		{"no token", "GET", "/", nil, 200, ""},
		{"escaped token", "GET", "/?t=a%20b%26c", nil, 200, "a b&c"},
		{"proxy headers as received", "GET", "/?t=v", map[string]string{"via": "1.1 x", "x-forwarded-for": "127.0.0.1"}, 200, "v"},
		{"head", "HEAD", "/?t=h", nil, 200, "h"},
		{"post", "POST", "/?t=p", nil, 405, ""},
		{"put", "PUT", "/", nil, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.headers {
				req.Header[k] = []string{v} // as sent, not canonicalised by the client
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
			if tt.method == "HEAD" {
				if len(body) != 0 {
					t.Fatalf("HEAD answered a body: %q", body)
				}
				return
			}
			var page Response
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatalf("decode %q: %v", body, err)
			}
			if page.Judge != Name || page.Token != tt.wantToken || page.Method != tt.method ||
				page.RemoteIP != "127.0.0.1" || !strings.HasPrefix(page.RemoteAddr, "127.0.0.1:") ||
				page.Host != host || page.URI != tt.path {
				t.Fatalf("page %+v", page)
			}
			for k, v := range tt.headers {
				if got := page.Headers.Get(k); got != v {
					t.Fatalf("header %s = %q, want %q (headers %v)", k, got, v, page.Headers)
				}
				if _, ok := page.Headers[http.CanonicalHeaderKey(k)]; !ok {
					t.Fatalf("header %s not under its canonical name: %v", k, page.Headers)
				}
			}
		})
	}
}

// TestFieldNames pins the JSON field names internal/check relies on.
func TestFieldNames(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "http://127.0.0.1:8080/?t=abc", nil)
	req.Header.Set("Via", "1.1 x")
	Handler(nil).ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := "headers host judge method remote_addr remote_ip token uri"
	if got := strings.Join(keys, " "); got != want {
		t.Fatalf("fields %q, want %q", got, want)
	}
	if h, ok := m["headers"].(map[string]any); !ok || h["Via"] == nil {
		t.Fatalf("headers %v", m["headers"])
	}
}
