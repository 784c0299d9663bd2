package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/lab"
)

func TestStatsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []handshakeStats{
		{full: 1, resumed: 10000, kx: map[string]int{"TLS1.2-X25519": 1, "TLS1.2-resumed": 10000}},
		{full: 3, kx: map[string]int{"X25519MLKEM768": 3}},
		{kx: map[string]int{}},
	} {
		got, err := parseStats(s.String())
		if err != nil || got.String() != s.String() {
			t.Errorf("parseStats(%q) = %v, %v", s.String(), got, err)
		}
	}
	if _, err := parseStats("full=x resumed=1 kx="); err == nil {
		t.Error("parseStats accepted a bad count")
	}
	if got := (handshakeStats{kx: map[string]int{"a": 1, "b": 5}}).mainKX(); got != "b+1" {
		t.Errorf("mainKX = %q, want b+1", got)
	}
}

func TestHostsEntry(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hosts")
	hosts := "# comment ipinfo.io\n127.0.0.1 localhost\n\n127.0.0.2\tjudge IPinfo.io # the judge\n"
	if err := os.WriteFile(path, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	if ip, err := hostsEntry(path, "ipinfo.io"); err != nil || ip != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("hostsEntry(ipinfo.io) = %v, %v; want 127.0.0.2", ip, err)
	}
	if ip, err := hostsEntry(path, "example.com"); err == nil {
		t.Errorf("hostsEntry(example.com) = %v, want an error", ip)
	}
}

// TestCompareLive: a list of live proxies (mubeng's -o) against the truth.
func TestCompareLive(t *testing.T) {
	t.Parallel()
	truth := map[string]lab.TruthRecord{}
	for _, r := range []lab.TruthRecord{
		{Proxy: "http://127.0.0.3:80", Alive: true}, {Proxy: "socks5://127.0.0.4:81", Alive: true},
		{Proxy: "http://127.0.0.5:82"}, {Proxy: "socks5://127.0.0.6:83"},
	} {
		truth[strings.TrimPrefix(strings.TrimPrefix(r.Proxy, "http://"), "socks5://")] = r
	}
	path := filepath.Join(t.TempDir(), "live.txt")
	if err := os.WriteFile(path, []byte("http://127.0.0.3:80\nhttp://127.0.0.5:82\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := compareLive(&rep, truth, path); err != nil {
		t.Fatal(err)
	}
	if rep.alive != 2 || rep.falsePos != 1 || rep.falseNeg != 1 || rep.checked != 4 {
		t.Errorf("compareLive: %+v, want 2 alive, 1 false positive, 1 false negative, 4 checked", rep)
	}
	rep = report{}
	if err := compareLive(&rep, truth, filepath.Join(t.TempDir(), "none")); err != nil || rep.falseNeg != 2 {
		t.Errorf("no file: %+v, %v; want every live proxy a false negative", rep, err)
	}
	if err := os.WriteFile(path, []byte("http://127.0.0.9:80\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := compareLive(&report{}, truth, path); err == nil {
		t.Error("a proxy that is not a candidate was accepted")
	}
}
