package serve

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func TestLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		want    bool
		wantErr bool
	}{
		{"127.0.0.1:8081", true, false},
		{"127.0.0.2:0", true, false},
		{"127.255.255.254:1", true, false},
		{"[::1]:8081", true, false},
		{"[::ffff:127.0.0.1]:8081", true, false},
		{"localhost:8081", true, false},
		{"LOCALHOST:8081", true, false},
		{":8081", false, false},
		{"0.0.0.0:8081", false, false},
		{"[::]:8081", false, false},
		{"10.0.0.2:8081", false, false},
		{"192.168.1.1:8081", false, false},
		{"[2001:db8::1]:8081", false, false},
		{"[fe80::1%lo]:8081", false, false},
		{"example.com:8081", false, false},
		{"localhost.example.com:8081", false, false},
		{"127.0.0.1", false, true},
		{"127.0.0.1:", false, true},
		{"", false, true},
	}
	for _, tt := range tests {
		got, err := Loopback(tt.addr)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Loopback(%q) = %v, %v; want %v, error %v", tt.addr, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    Options
		want string // "" for valid
	}{
		{"loopback", Options{Listen: "127.0.0.1:8081"}, ""},
		{"loopback with auth", Options{Listen: "127.0.0.1:8081", Auth: "a:b"}, ""},
		{"all interfaces", Options{Listen: ":8081"}, "not a loopback address"},
		{"unspecified", Options{Listen: "0.0.0.0:8081"}, "--auth-file"},
		{"lan", Options{Listen: "10.0.0.2:8081"}, "--insecure-no-auth"},
		{"lan with auth", Options{Listen: "10.0.0.2:8081", Auth: "a:b"}, ""},
		{"lan with auth file", Options{Listen: "10.0.0.2:8081", AuthFile: "/x"}, ""},
		{"lan insecure", Options{Listen: "0.0.0.0:8081", Insecure: true}, ""},
		{"both auths", Options{Listen: ":1", Auth: "a:b", AuthFile: "/x"}, "give one"},
		{"insecure and auth", Options{Listen: ":1", Auth: "a:b", Insecure: true}, "say which"},
		{"auth without password", Options{Listen: ":1", Auth: "a"}, "user:pass"},
		{"auth empty user", Options{Listen: ":1", Auth: ":b"}, "user:pass"},
		{"bad address", Options{Listen: "nowhere"}, "--listen"},
	}
	for _, tt := range tests {
		err := tt.o.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one saying %q", tt.name, err, tt.want)
		}
	}
}

func writeFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuthFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // "" for accepted
	}{
		{"0600", "alice:s3cret\n", 0o600, ""},
		{"0640 crlf", "alice:s3cret\r\n", 0o640, ""},
		{"0644 world-readable", "alice:s3cret\n", 0o644, "mode 0644"},
		{"0602 world-writable", "alice:s3cret\n", 0o602, "mode 0602"},
		{"two lines", "alice:s3cret\nbob:x\n", 0o600, "one line"},
		{"no colon", "alice\n", 0o600, "user:pass"},
		{"empty", "", 0o600, "user:pass"},
	}
	for _, tt := range tests {
		o := Options{Listen: "0.0.0.0:0", AuthFile: writeFile(t, tt.content, tt.mode)}
		g, err := o.Gate(nil)
		if tt.want == "" {
			if err != nil || !g.Authenticated() {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrRefused) {
			t.Errorf("%s: error %v, want a refusal saying %q", tt.name, err, tt.want)
		}
	}
	_, err := Options{Listen: ":0", AuthFile: filepath.Join(t.TempDir(), "missing")}.Gate(nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	_, err = Options{Listen: ":0", AuthFile: t.TempDir()}.Gate(nil)
	if !errors.Is(err, ErrRefused) {
		t.Errorf("directory: %v", err)
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	var o Options
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	o.Register(fs, "127.0.0.1:8081")
	if err := fs.Parse([]string{"--auth-file", "/f", "--listen", ":9"}); err != nil {
		t.Fatal(err)
	}
	if o != (Options{Listen: ":9", AuthFile: "/f"}) {
		t.Errorf("options %+v", o)
	}
}

// serveGate runs h behind a gate for o on a loopback listener and returns its URL.
func serveGate(t *testing.T, o Options, log *slog.Logger) string {
	t.Helper()
	g, err := o.Gate(log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := g.Listen()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

func do(t *testing.T, method, url string, set func(*http.Request)) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if set != nil {
		set(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestWrap(t *testing.T) {
	t.Parallel()
	authed := serveGate(t, Options{Listen: "127.0.0.1:0", Auth: "alice:s3cret"}, nil)
	open := serveGate(t, Options{Listen: "127.0.0.1:0"}, nil)
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	tests := []struct {
		name   string
		method string
		url    string
		set    func(*http.Request)
		want   int
	}{
		{"no credentials", "GET", authed, nil, 401},
		{"wrong password", "GET", authed, basic("alice", "nope"), 401},
		{"wrong user", "GET", authed, basic("bob", "s3cret"), 401},
		{"right", "GET", authed, basic("alice", "s3cret"), 200},
		{"right post", "POST", authed, basic("alice", "s3cret"), 200},
		{"cross-site post", "POST", authed, func(r *http.Request) { r.SetBasicAuth("alice", "s3cret"); r.Header.Set("Sec-Fetch-Site", "cross-site") }, 403},
		{"loopback open get", "GET", open, nil, 200},
		{"rebound host", "GET", open, func(r *http.Request) { r.Host = "evil.example:8081" }, 403},
		{"localhost host", "GET", open, func(r *http.Request) { r.Host = "localhost:8081" }, 200},
		{"foreign origin post", "POST", open, func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }, 403},
		{"same origin post", "POST", open, func(r *http.Request) { r.Header.Set("Origin", "http://"+r.Host) }, 200},
		{"same-origin fetch", "DELETE", open, func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-origin") }, 200},
	}
	for _, tt := range tests {
		if got := do(t, tt.method, tt.url, tt.set); got != tt.want {
			t.Errorf("%s: %s %s: status %d, want %d", tt.name, tt.method, tt.url, got, tt.want)
		}
	}
}

// TestAdmit is the rule Listen applies to the address it bound: a warning with
// --insecure-no-auth beyond loopback, a refusal without it or credentials, silence on loopback.
// (Tests bind loopback only, so the addresses beyond it are given, not bound.)
func TestAdmit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		bound    string
		creds    bool
		insecure bool
		refused  bool
		warned   bool
	}{
		{"127.0.0.1:8081", false, false, false, false},
		{"127.0.0.1:8081", false, true, false, false},
		{"[::1]:8081", false, false, false, false},
		{"0.0.0.0:8081", false, false, true, false},
		{"[::]:8081", false, true, false, true},
		{"10.0.0.2:8081", false, true, false, true},
		{"10.0.0.2:8081", true, false, false, false},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		g := &Gate{listen: tt.bound, insecure: tt.insecure, log: slog.New(slog.NewTextHandler(&buf, nil))}
		if tt.creds {
			g.creds, _ = parseCredentials("a:b")
		}
		err := g.admit(tt.bound)
		if (err != nil) != tt.refused || (err != nil && !errors.Is(err, ErrRefused)) {
			t.Errorf("%s creds=%v insecure=%v: error %v, want refused=%v", tt.bound, tt.creds, tt.insecure, err, tt.refused)
		}
		warned := strings.Contains(buf.String(), "level=WARN") && strings.Contains(buf.String(), "WITHOUT authentication")
		if warned != tt.warned {
			t.Errorf("%s creds=%v insecure=%v: log %q, want warning=%v", tt.bound, tt.creds, tt.insecure, buf.String(), tt.warned)
		}
	}
	// And on a real loopback listener, --insecure-no-auth stays quiet: nothing is exposed.
	var buf bytes.Buffer
	serveGate(t, Options{Listen: "127.0.0.1:0", Insecure: true}, slog.New(slog.NewTextHandler(&buf, nil)))
	if buf.Len() != 0 {
		t.Errorf("logged on loopback: %s", buf.String())
	}
}
