package lab

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSources: every source serves its part of the candidates with its content type and an
// ETag (a matching If-None-Match gets 304), the files are written, every hostile kind answers
// as documented, and Stop ends slow and endless answers and leaves no goroutine or fd.
func TestSources(t *testing.T) {
	fds := countFDs(t)
	dir := t.TempDir()
	l := startLab(t, Config{HTTP: 6, SOCKS5Auth: 4, Bare: 2, Sources: 6, SlowSources: 1, Dir: dir})
	s := l.Sources()
	infos := s.Infos()
	if len(infos) != 6 || !infos[5].Slow || infos[0].Slow {
		t.Fatalf("infos: %+v", infos)
	}
	total := 0
	for _, in := range infos[:5] {
		total += len(in.Proxies)
		resp, err := http.Get(in.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, p := range in.Proxies {
			if !strings.Contains(string(b), p.Host) {
				t.Errorf("%s (%s) lacks %s:\n%s", in.Name, in.Format, p, b)
			}
		}
		req, _ := http.NewRequest("GET", in.URL, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		resp2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp2.Body.Close()
		if resp2.StatusCode != http.StatusNotModified {
			t.Errorf("%s: conditional GET got %d", in.Name, resp2.StatusCode)
		}
	}
	if total+len(infos[5].Proxies) != len(l.Candidates()) {
		t.Errorf("sources hold %d candidates, the lab %d", total+len(infos[5].Proxies), len(l.Candidates()))
	}
	for _, name := range []string{"sources.txt", "sources.toml", "hostile.toml"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !strings.Contains(string(b), "http://127.0.0.2:") {
			t.Errorf("%s: %v %q", name, err, b)
		}
	}
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for kind, want := range map[string]int{HostileBinary: 200, HostileMalformedJSON: 200, HostileWrongType: 200,
		HostileGzipBomb: 200, HostileStatus500: 500, HostileNotFound: 404, HostileRedirectLoop: 302} {
		resp, err := client.Get(s.HostileURL(kind))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", kind, resp.StatusCode, want)
		}
	}
	// Slow, endless and drip answers in flight when the lab stops must end with it.
	for _, u := range []string{infos[5].URL, s.HostileURL(HostileEndless), s.HostileURL(HostileSlowDrip), s.HostileURL(HostileHuge)} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = io.Copy(io.Discard, resp.Body); resp.Body.Close() }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	stopLab(t, l)
	http.DefaultClient.CloseIdleConnections()
	client.CloseIdleConnections()
	waitFDs(t, fds)
}

// waitFDs polls until the process has at most want fds (connections close asynchronously).
func waitFDs(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for countFDs(t) > want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := countFDs(t); n > want {
		t.Errorf("%d fds after stop, %d before", n, want)
	}
}
