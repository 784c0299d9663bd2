package external

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/proxy"
)

// TestResults: one result per proxy of the chunk, in order; the ones the tool reported are alive
// (a bare one with the scheme the tool found), the others dead.
func TestResults(t *testing.T) {
	t.Parallel()
	mark := filepath.Join(t.TempDir(), "mark")
	c := &Checker{Template: fakeChecker(t) + " -f {in} -o {out} -mode extra -pids " + mark, TempDir: t.TempDir(), Runner: runner}
	chunk, _ := testChunk(t)
	got, err := c.Results(context.Background(), chunk)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(chunk) {
		t.Fatalf("%d results for %d proxies", len(got), len(chunk))
	}
	want := []struct {
		class  check.Class
		scheme proxy.Scheme
	}{
		{check.Alive, proxy.HTTP}, {check.Dead, proxy.HTTP}, {check.Alive, proxy.SOCKS5}, {check.Dead, proxy.SOCKS4},
		{check.Alive, proxy.SOCKS5}, {check.Alive, proxy.SOCKS5}, {check.Alive, proxy.HTTPS},
	}
	for i, r := range got {
		if r.Proxy.Addr() != chunk[i].Addr() || r.Class != want[i].class || r.Proxy.Scheme != want[i].scheme {
			t.Errorf("result %d = %s %s, want %s %s %s", i, r.Proxy, r.Class, chunk[i].Addr(), want[i].scheme, want[i].class)
		}
		if (r.Class == check.Dead) != (r.Err != "") {
			t.Errorf("result %d: class %s with error %q", i, r.Class, r.Err)
		}
	}
	waitNoProcesses(t, mark)
}
