package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkPattern reads r to the end and fails unless it holds exactly n pattern bytes.
func checkPattern(t *testing.T, r io.Reader, from, n int64) {
	t.Helper()
	buf := make([]byte, 64<<10)
	var got int64
	for {
		k, err := r.Read(buf)
		for i := range k {
			if buf[i] != PatternByte(from+got+int64(i)) {
				t.Fatalf("byte %d is %d, want %d", from+got+int64(i), buf[i], PatternByte(from+got+int64(i)))
			}
		}
		got += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got != n {
		t.Fatalf("got %d bytes, want %d", got, n)
	}
}

// TestBackend exercises the backend directly and through a lab HTTP proxy: pattern bodies, the
// hold gate (the first bytes arrive while the last is held), echo, and a canceled slow stream.
func TestBackend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := Start(context.Background(), Config{HTTP: 1, Backend: true, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer stopLab(t, l)
	base := l.BackendURL()
	if !strings.HasPrefix(base, "http://127.0.0.2:") {
		t.Fatalf("backend URL %q", base)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "backend.txt")); err != nil || string(b) != base+"\n" {
		t.Fatalf("backend.txt %q %v", b, err)
	}
	proxyURL := l.Candidates()[0].URL()
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableCompression: true}}
	defer client.CloseIdleConnections()

	t.Run("bytes through a lab proxy", func(t *testing.T) {
		resp, err := client.Get(base + "bytes/3000001")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ContentLength != 3000001 {
			t.Errorf("content length %d", resp.ContentLength)
		}
		checkPattern(t, resp.Body, 0, 3000001)
	})
	t.Run("hold", func(t *testing.T) {
		resp, err := http.Get(base + "bytes/100000?hold=h1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		first := make([]byte, 99999)
		if _, err := io.ReadFull(br, first); err != nil {
			t.Fatal(err)
		}
		checkPattern(t, bytes.NewReader(first), 0, 99999)
		if s := l.BackendStats(); s.Done != 0 && s.Requests == 0 {
			t.Errorf("stats %+v", s)
		}
		l.Release("h1")
		checkPattern(t, br, 99999, 1)
	})
	t.Run("echo", func(t *testing.T) {
		body := strings.Repeat("x", 70000)
		req, _ := http.NewRequest(http.MethodPost, base+"echo?a=1", strings.NewReader(body))
		req.Header.Set("X-Test", "v")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e Echo
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(body))
		if e.Method != "POST" || e.URI != "/echo?a=1" || e.BodyBytes != 70000 || e.BodySHA256 != hex.EncodeToString(sum[:]) ||
			e.Headers.Get("X-Test") != "v" || e.RemoteIP != proxyURL.Hostname() {
			t.Errorf("echo %+v", e)
		}
	})
	t.Run("slow canceled", func(t *testing.T) {
		before := l.BackendStats().Canceled
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"slow?n=100&d=20s", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resp.Body.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		deadline := time.Now().Add(20 * time.Second)
		for l.BackendStats().Canceled == before {
			if time.Now().After(deadline) {
				t.Fatal("the backend never saw the cancellation")
			}
			time.Sleep(5 * time.Millisecond) // polling with a deadline
		}
	})
	t.Run("bad", func(t *testing.T) {
		for _, p := range []string{"bytes/-1", "bytes/x", "slow?d=x"} {
			resp, err := http.Get(base + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %s", p, resp.Status)
			}
		}
	})
	http.DefaultClient.CloseIdleConnections()

}
