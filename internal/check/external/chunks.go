package external

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/proxy"
)

// DefaultIdle is how long CheckStream lets a chunk that is not full wait for more proxies.
const DefaultIdle = 300 * time.Millisecond

// Emit receives one result, with the proxy as it was given (a result's Proxy may carry the
// scheme the tool found for a bare one). It is called from one goroutine at a time.
type Emit func(given proxy.Proxy, r check.Result)

// CheckAll checks ps in chunks of at most size proxies (at least 1), one run of the tool at a
// time, and emits every proxy of each chunk with its result (Results). A chunk whose run fails
// is not emitted: the failure is logged, the next chunk runs, and CheckAll returns every
// failure joined, each naming its chunk ("chunk 3 (1000 proxies): ..."). When ctx is canceled
// no new run starts and the run in flight is killed; neither is emitted, and ctx's end is not
// a failure.
func (c *Checker) CheckAll(ctx context.Context, ps []proxy.Proxy, size int, emit Emit) error {
	size = max(size, 1)
	next := func() ([]proxy.Proxy, bool) {
		chunk := ps[:min(size, len(ps))]
		ps = ps[len(chunk):]
		return chunk, len(ps) > 0
	}
	return c.runChunks(ctx, next, emit)
}

// CheckStream is CheckAll for proxies that arrive on in: a chunk runs when it holds size
// proxies, when in is closed, or when no new proxy came for idle (default DefaultIdle), so a
// slow trickle is not kept waiting. It returns once in is closed and the last chunk has run: the
// sender must close in. After ctx is canceled, what still arrives is dropped.
func (c *Checker) CheckStream(ctx context.Context, in <-chan proxy.Proxy, size int, idle time.Duration, emit Emit) error {
	size = max(size, 1)
	if idle <= 0 {
		idle = DefaultIdle
	}
	err := c.runChunks(ctx, func() ([]proxy.Proxy, bool) { return gather(ctx, in, size, idle) }, emit)
	for range in { // canceled: drop the rest, so that the sender never blocks
	}
	return err
}

// gather receives up to size proxies from in: until in is closed (more is false then), ctx
// ends, or idle passes without a new proxy while the chunk is not empty.
func gather(ctx context.Context, in <-chan proxy.Proxy, size int, idle time.Duration) (chunk []proxy.Proxy, more bool) {
	timer := time.NewTimer(idle)
	defer timer.Stop()
	var quiet <-chan time.Time // armed once the chunk has a proxy
	for len(chunk) < size {
		select {
		case p, ok := <-in:
			if !ok {
				return chunk, false
			}
			chunk = append(chunk, p)
			timer.Reset(idle)
			quiet = timer.C
		case <-quiet:
			return chunk, true
		case <-ctx.Done():
			return chunk, false
		}
	}
	return chunk, true
}

// runChunks runs the tool on each chunk next gives until next says there is no more or ctx
// ends, emitting the results of the runs that worked.
func (c *Checker) runChunks(ctx context.Context, next func() ([]proxy.Proxy, bool), emit Emit) error {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var failed []error
	for n, more := 1, true; more && ctx.Err() == nil; n++ {
		var chunk []proxy.Proxy
		if chunk, more = next(); len(chunk) == 0 || ctx.Err() != nil {
			n--
			continue
		}
		rs, err := c.Results(ctx, chunk)
		if err != nil && ctx.Err() != nil {
			break // interrupted: what was done is emitted, the rest is not checked
		}
		if err != nil {
			log.Error("external checker failed; its chunk is not checked", "chunk", n, "proxies", len(chunk), "err", err)
			failed = append(failed, fmt.Errorf("chunk %d (%d proxies): %w", n, len(chunk), err))
			continue
		}
		for i, r := range rs {
			emit(chunk[i], r)
		}
	}
	return errors.Join(failed...)
}
