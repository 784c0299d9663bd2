package external

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// gathered is what one gather call returned.
type gathered struct {
	chunk []proxy.Proxy
	more  bool
}

// startGather runs gather in a goroutine of the bubble and returns where its result arrives.
func startGather(ctx context.Context, in <-chan proxy.Proxy, size int, idle time.Duration) <-chan gathered {
	out := make(chan gathered, 1)
	go func() {
		chunk, more := gather(ctx, in, size, idle)
		out <- gathered{chunk, more}
	}()
	return out
}

// returned reports whether gather has returned, once every goroutine of the bubble is blocked.
func returned(res <-chan gathered) (gathered, bool) {
	synctest.Wait()
	select {
	case g := <-res:
		return g, true
	default:
		return gathered{}, false
	}
}

// TestGatherIdle runs gather's timer logic on the bubble's fake clock, so that it does not depend
// on the machine's speed: an empty chunk waits for its first proxy however long it takes; a chunk
// that is not full is sent when idle passes without a new proxy, each proxy restarting the wait.
func TestGatherIdle(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const idle = time.Second
		in := make(chan proxy.Proxy)
		res := startGather(t.Context(), in, 4, idle)
		time.Sleep(time.Hour)
		if g, ok := returned(res); ok {
			t.Fatalf("an empty chunk returned after an hour: %+v", g)
		}
		ps := portRange(1000, 3)
		in <- ps[0]
		time.Sleep(idle - time.Millisecond)
		in <- ps[1] // restarts the idle wait
		time.Sleep(idle - time.Millisecond)
		if g, ok := returned(res); ok {
			t.Fatalf("returned before idle passed without a proxy: %+v", g)
		}
		in <- ps[2]
		time.Sleep(idle)
		g, ok := returned(res)
		if !ok || len(g.chunk) != 3 || !g.more {
			t.Fatalf("after idle: returned %v with %+v, want the 3 proxies and more", ok, g)
		}
	})
}

// TestGatherEnds: a full chunk returns at once, a closed stream and a canceled context end the
// gathering (more is false) with what was gathered.
func TestGatherEnds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		in := make(chan proxy.Proxy)
		res := startGather(t.Context(), in, 2, time.Hour)
		for _, p := range portRange(1000, 2) {
			in <- p
		}
		if g, ok := returned(res); !ok || len(g.chunk) != 2 || !g.more {
			t.Fatalf("full chunk: returned %v with %+v, want 2 proxies at once and more", ok, g)
		}

		res = startGather(t.Context(), in, 2, time.Hour)
		in <- portRange(2000, 1)[0]
		close(in)
		if g, ok := returned(res); !ok || len(g.chunk) != 1 || g.more {
			t.Fatalf("closed stream: returned %v with %+v, want 1 proxy and no more", ok, g)
		}

		ctx, cancel := context.WithCancel(t.Context())
		in2 := make(chan proxy.Proxy)
		res = startGather(ctx, in2, 2, time.Hour)
		in2 <- portRange(3000, 1)[0]
		cancel()
		if g, ok := returned(res); !ok || len(g.chunk) != 1 || g.more {
			t.Fatalf("canceled: returned %v with %+v, want 1 proxy and no more", ok, g)
		}
	})
}
