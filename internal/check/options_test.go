package check

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	judgepkg "github.com/proxyline/proxyline/internal/judge"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{"ok", Options{Judge: "http://127.0.0.1/"}, ""},
		{"ok https with port and query", Options{Judge: "https://judge.example:8443/azenv.php?x=1", JudgeStatus: 204}, ""},
		{"no judge", Options{}, "judge URL is required"},
		{"bad scheme", Options{Judge: "ftp://127.0.0.1/"}, "scheme must be http or https"},
		{"no host", Options{Judge: "http:///x"}, "no host"},
		{"credentials", Options{Judge: "http://u:p@127.0.0.1/"}, "credentials"},
		{"bad status", Options{Judge: "http://127.0.0.1/", JudgeStatus: 42}, "judge status 42"},
		{"negative timeout", Options{Judge: "http://127.0.0.1/", Timeout: -time.Second}, "timeout"},
		{"bad real ip", Options{Judge: "http://127.0.0.1/", RealIP: "me"}, "real IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.o)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want mention of %q", err, tt.wantErr)
			}
		})
	}
}

// TestPrepare runs Prepare against proxyline's judge and against servers that are not it.
func TestPrepare(t *testing.T) {
	t.Parallel()
	real := httptest.NewServer(judgepkg.Handler(nil))
	t.Cleanup(real.Close)
	impostor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"judge":"proxyline","token":"not yours"}`))
	}))
	t.Cleanup(impostor.Close)
	azenv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<pre>REMOTE_ADDR = " + strings.Split(r.RemoteAddr, ":")[0] + "</pre>"))
	}))
	t.Cleanup(azenv.Close)
	tests := []struct {
		name     string
		o        Options
		wantErr  string
		wantReal string
	}{
		{"proxyline judge", Options{Judge: real.URL + "/judge?x=1"}, "", "127.0.0.1"},
		{"given real ip kept", Options{Judge: real.URL, RealIP: "192.0.2.1"}, "", "192.0.2.1"},
		{"impostor", Options{Judge: impostor.URL}, "token", ""},
		{"wrong status", Options{Judge: real.URL, JudgeStatus: 204}, "want 204", ""},
		{"keyword judge", Options{Judge: azenv.URL, JudgeKeyword: "REMOTE_ADDR"}, "", ""},
		{"keyword missing", Options{Judge: azenv.URL, JudgeKeyword: "HTTP_HOST"}, "keyword", ""},
		{"judge down", Options{Judge: "http://127.0.0.1:1/"}, "refused", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.o.Timeout = 5 * time.Second
			c, err := New(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Prepare(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.RealIP(); got != tt.wantReal {
				t.Errorf("RealIP = %q, want %q", got, tt.wantReal)
			}
		})
	}
}

// TestKeywordJudge checks a third-party judge page through a proxy: keyword required, our
// address anywhere means transparent, a proxy header (as CGI variable) anonymous.
func TestKeywordJudge(t *testing.T) {
	t.Parallel()
	page := func(body string) func(net.Conn, *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			writeResponse(c, 200, body)
		}
	}
	tests := []struct {
		name string
		body string
		want Class
		anon Anonymity
	}{
		{"elite", "<pre>REMOTE_ADDR = 127.0.0.9\nHTTP_USER_AGENT = x</pre>", Alive, Elite},
		{"anonymous", "<pre>REMOTE_ADDR = 127.0.0.9\nHTTP_VIA = 1.1 squid</pre>", Alive, Anonymous},
		{"transparent", "<pre>REMOTE_ADDR = 127.0.0.9\nHTTP_X_FORWARDED_FOR = 127.0.0.1</pre>", Alive, Transparent},
		{"near miss", "<pre>REMOTE_ADDR = 127.0.0.19\nTRIVIAL = 1</pre>", Alive, Elite},
		{"no keyword", "<html>login</html>", Mismatch, ""},
	}
	c := newTestChecker(t, Options{JudgeKeyword: "REMOTE_ADDR"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := c.Check(context.Background(), proxyAt(t, proxy.HTTP, fakeProxy(t, page(tt.body))))
			if r.Class != tt.want || r.Anonymity != tt.anon {
				t.Fatalf("got %s/%q (%s), want %s/%q", r.Class, r.Anonymity, r.Err, tt.want, tt.anon)
			}
		})
	}
}

// TestCheckAllCancel cancels CheckAll while every check in flight hangs on a blackhole: the
// checks in flight end at once as Canceled, no new check starts, and CheckAll returns.
func TestCheckAllCancel(t *testing.T) {
	t.Parallel()
	l, err := lab.Start(context.Background(), lab.Config{Blackhole: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop lab: %v", err)
		}
	})
	c := newTestChecker(t, Options{Judge: l.JudgeURL(), Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := time.AfterFunc(300*time.Millisecond, cancel) // the interrupt, while 2 checks hang
	defer timer.Stop()
	start := time.Now()
	var got []Result
	c.CheckAll(ctx, l.Candidates(), 2, func(r Result) { got = append(got, r) })
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("CheckAll took %v after cancel", took)
	}
	if len(got) != 2 {
		t.Fatalf("%d results, want the 2 in flight", len(got))
	}
	for _, r := range got {
		if r.Class != Canceled {
			t.Errorf("%s: %s (%s), want canceled", r.Proxy, r.Class, r.Err)
		}
	}
	if r := c.Check(ctx, l.Candidates()[0]); r.Class != Canceled {
		t.Errorf("Check with a canceled context: %s, want canceled", r.Class)
	}
}

// TestValidateJudgeURL is the one judge URL validation of check and enqueue.
func TestValidateJudgeURL(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{
		"http://127.0.0.2:8080/", "https://judge.example/", "http://judge.example:65535/azenv.php?x=1",
		"http://[::1]:8080/", "https://[2001:db8::1]/", "http://h", "HTTP://h/",
	} {
		if err := ValidateJudgeURL(ok); err != nil {
			t.Errorf("ValidateJudgeURL(%q) = %v", ok, err)
		}
	}
	for bad, says := range map[string]string{
		"":                    "required",
		"ftp://x/":            "scheme",
		"not a url":           "scheme",
		"http://h:99999/":     "out of range",
		"http://h:0/":         "out of range",
		"javascript:alert(1)": "scheme",
		"http:opaque":         "no host",
		"http:///path":        "no host",
		"//h:80/":             "scheme",
		"http://u:s3cret@h/":  "credentials",
		"http://h/#frag":      "fragment",
		"http://h:8o/":        "port",
		"http://[::1/":        "judge",
	} {
		err := ValidateJudgeURL(bad)
		if err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("ValidateJudgeURL(%q) = %v, want an error saying %q", bad, err, says)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ValidateJudgeURL(%q) shows the password: %v", bad, err)
		}
	}
}
