package check

import (
	"testing"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// TestSummaryLine checks the line a run of checks ends with: live proxies by scheme, the rest by
// class, sorted; canceled checks counted apart from the checked ones; colour only when asked.
func TestSummaryLine(t *testing.T) {
	t.Parallel()
	s := NewSummary()
	for _, r := range []Result{
		{Proxy: proxy.Proxy{Scheme: proxy.SOCKS5, Host: "127.0.0.2", Port: 1080}, Class: Alive},
		{Proxy: proxy.Proxy{Scheme: proxy.HTTP, Host: "127.0.0.3", Port: 8080}, Class: Alive},
		{Proxy: proxy.Proxy{Scheme: proxy.HTTP, Host: "127.0.0.4", Port: 8080}, Class: Alive},
		{Proxy: proxy.Proxy{Host: "127.0.0.5", Port: 8080}, Class: Timeout},
		{Proxy: proxy.Proxy{Host: "127.0.0.6", Port: 8080}, Class: Refused},
		{Proxy: proxy.Proxy{Host: "127.0.0.7", Port: 8080}, Class: Canceled},
	} {
		s.Add(r)
	}
	if got := s.Checked(); got != 5 {
		t.Errorf("Checked = %d, want 5 (the canceled check did not finish)", got)
	}
	if got := s.Count(Alive); got != 3 {
		t.Errorf("Count(Alive) = %d, want 3", got)
	}
	want := "checked 5 of 8 in 1.50s: 3 alive (http 2, socks5 1); canceled 1, refused 1, timeout 1"
	if got := s.Line(8, 1500*time.Millisecond, false); got != want {
		t.Errorf("Line =\n%q, want\n%q", got, want)
	}
	wantColour := "checked 5 of 8 in 1.50s: \x1b[32m3 alive\x1b[0m (http 2, socks5 1); canceled 1, refused 1, timeout 1"
	if got := s.Line(8, 1500*time.Millisecond, true); got != wantColour {
		t.Errorf("Line with colour =\n%q, want\n%q", got, wantColour)
	}
}

// TestSummaryEmpty checks the line of a run that checked nothing, and the name of an unknown scheme.
func TestSummaryEmpty(t *testing.T) {
	t.Parallel()
	s := NewSummary()
	if got, want := s.Line(0, 0, false), "checked 0 of 0 in 0.00s: 0 alive"; got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
	s.Add(Result{Proxy: proxy.Proxy{Host: "127.0.0.2", Port: 8080}, Class: Alive})
	if got, want := s.Line(1, time.Second, false), "checked 1 of 1 in 1.00s: 1 alive (unknown 1)"; got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
}
