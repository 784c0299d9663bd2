package serve

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAuthenticated: a handler behind a Gate with credentials sees the requests it lets through
// as authenticated; behind a Gate without credentials, or without a Gate, none is, whatever
// Authorization header it carries.
func TestAuthenticated(t *testing.T) {
	t.Parallel()
	seen := func(g *Gate, set func(*http.Request)) (int, bool) {
		var got bool
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = Authenticated(r) })
		var wrapped http.Handler = h
		if g != nil {
			wrapped = g.Wrap(h)
		}
		r := httptest.NewRequest("GET", "http://127.0.0.1:8081/", nil)
		if set != nil {
			set(r)
		}
		w := httptest.NewRecorder()
		wrapped.ServeHTTP(w, r)
		return w.Code, got
	}
	authed, err := Options{Listen: "127.0.0.1:0", Auth: "alice:s3cret"}.Gate(nil)
	if err != nil {
		t.Fatal(err)
	}
	open, err := Options{Listen: "127.0.0.1:0"}.Gate(nil)
	if err != nil {
		t.Fatal(err)
	}
	right := func(r *http.Request) { r.SetBasicAuth("alice", "s3cret") }
	wrong := func(r *http.Request) { r.SetBasicAuth("alice", "nope") }
	for _, tt := range []struct {
		name     string
		g        *Gate
		set      func(*http.Request)
		wantCode int
		want     bool
	}{
		{"gate with credentials, right ones", authed, right, 200, true},
		{"gate with credentials, wrong ones", authed, wrong, 401, false},
		{"gate without credentials", open, right, 200, false},
		{"no gate", nil, right, 200, false},
	} {
		code, got := seen(tt.g, tt.set)
		if code != tt.wantCode || got != tt.want {
			t.Errorf("%s: status %d, authenticated %v; want %d, %v", tt.name, code, got, tt.wantCode, tt.want)
		}
	}
}
