package external

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/proxy"
)

// chunkTool is a checker (sh, wc and grep) that appends the size of its chunk to a file (the
// third argument), fails when the chunk holds a proxy on port 6666, and reports the proxies on
// even ports live.
const chunkTool = `sh -c 'wc -l < "$1" >> "$3"; grep -q ":6666$" "$1" && exit 3; grep "[02468]$" "$1" > "$2"; exit 0' sh {in} {out} `

// chunkedChecker runs chunkTool; the returned file gets each run's chunk size.
func chunkedChecker(t *testing.T) (*Checker, string) {
	t.Helper()
	sizes := filepath.Join(t.TempDir(), "sizes")
	return &Checker{Template: chunkTool + sizes, Runner: runner}, sizes
}

// runSizes reads the chunk sizes the runs recorded.
func runSizes(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// ports returns proxies on 127.0.0.2 at the given ports.
func ports(ps ...int) []proxy.Proxy {
	out := make([]proxy.Proxy, len(ps))
	for i, p := range ps {
		out[i] = proxy.Proxy{Scheme: proxy.HTTP, Host: "127.0.0.2", Port: uint16(p)}
	}
	return out
}

// portRange returns n proxies from port first up.
func portRange(first, n int) []proxy.Proxy {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = first + i
	}
	return ports(ps...)
}

func TestCheckAllChunks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ps      []proxy.Proxy
		size    int
		sizes   string // the runs, in order
		emitted int
		err     string
	}{
		{"chunks of 10", portRange(1000, 25), 10, "10 10 5", 25, ""},
		{"one chunk", portRange(1000, 3), 10, "3", 3, ""},
		{"nothing", nil, 10, "", 0, ""},
		{"a failed chunk is reported, the others are emitted", append(append(portRange(1000, 12), ports(6666)...), portRange(2000, 10)...), 10,
			"10 10 3", 13, "chunk 2 (10 proxies): exec checker sh: failed: exit status 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, sizes := chunkedChecker(t)
			given := map[proxy.Proxy]check.Class{}
			err := c.CheckAll(context.Background(), tt.ps, tt.size, func(g proxy.Proxy, r check.Result) {
				if _, dup := given[g]; dup || r.Proxy.Addr() != g.Addr() {
					t.Errorf("emitted %v for %v (twice: %v)", r.Proxy, g, dup)
				}
				given[g] = r.Class
			})
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrFailed)) {
				t.Fatalf("CheckAll = %v, want %q", err, tt.err)
			}
			if got := runSizes(t, sizes); got != tt.sizes {
				t.Errorf("runs of %q, want %q", got, tt.sizes)
			}
			if len(given) != tt.emitted {
				t.Errorf("%d emitted, want %d", len(given), tt.emitted)
			}
			for g, class := range given {
				if want := map[bool]check.Class{true: check.Alive, false: check.Dead}[g.Port%2 == 0]; class != want {
					t.Errorf("%v: %s, want %s", g, class, want)
				}
			}
		})
	}
}

// TestCheckAllCanceled: no run starts once the context is canceled, and that is no failure.
func TestCheckAllCanceled(t *testing.T) {
	t.Parallel()
	c, sizes := chunkedChecker(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.CheckAll(ctx, portRange(1000, 5), 2, func(g proxy.Proxy, r check.Result) { t.Errorf("emitted %v", g) })
	if err != nil || runSizes(t, sizes) != "" {
		t.Errorf("CheckAll after cancel = %v, runs %q; want nil and none", err, runSizes(t, sizes))
	}
}

// TestCheckStreamChunks: a full chunk runs at once, one not full runs after the idle time
// without waiting for more, and the last one when the stream closes; after a cancel what is
// still sent is taken and dropped, so the sender never blocks.
func TestCheckStreamChunks(t *testing.T) {
	t.Parallel()
	c, sizes := chunkedChecker(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := make(chan proxy.Proxy)
	got := make(chan proxy.Proxy, 100)
	done := make(chan error, 1)
	go func() {
		done <- c.CheckStream(ctx, in, 4, 50*time.Millisecond, func(g proxy.Proxy, _ check.Result) { got <- g })
	}()
	receive := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-got:
			case <-time.After(30 * time.Second):
				t.Fatalf("no result; runs so far %q", runSizes(t, sizes))
			}
		}
	}
	for _, p := range portRange(1000, 4) { // a full chunk
		in <- p
	}
	receive(4)
	in <- portRange(2000, 1)[0] // a trickle: runs after the idle time, the stream still open
	receive(1)
	for _, p := range portRange(3000, 3) {
		in <- p
	}
	close(in)
	receive(3)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The last three may be split if the machine is too slow to send them within the idle time.
	runs := runSizes(t, sizes)
	if !strings.HasPrefix(runs, "4 1 ") || (runs != "4 1 3" && runs != "4 1 1 2" && runs != "4 1 2 1" && runs != "4 1 1 1 1") {
		t.Errorf("runs %q, want \"4 1 3\"", runs)
	}

	in2 := make(chan proxy.Proxy)
	go func() {
		done <- c.CheckStream(ctx, in2, 4, time.Hour, func(g proxy.Proxy, _ check.Result) { got <- g })
	}()
	in2 <- portRange(4000, 1)[0]
	cancel()
	for _, p := range portRange(5000, 10) {
		in2 <- p // taken and dropped: never blocks for long
	}
	close(in2)
	if err := <-done; err != nil {
		t.Fatalf("CheckStream after cancel = %v", err)
	}
	if n := len(got); n != 0 || runSizes(t, sizes) != runs {
		t.Errorf("after the cancel: %d emitted, runs %q", n, runSizes(t, sizes))
	}
}
