package queue

import (
	"context"
	"sync"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/proxy"
)

// Slots bounds how many proxies a worker checks at once across all its jobs. A job ends when its
// slowest proxy does (a blackhole, at the timeout); with a bound per job, the slots its fast
// proxies finished with would stay idle until then. Shared slots go to the next proxy of any
// running job instead, so a worker running several jobs keeps every slot busy, as one
// `proxyline check` does.
type Slots struct{ sem chan struct{} }

// NewSlots returns n slots (at least 1).
func NewSlots(n int) *Slots { return &Slots{sem: make(chan struct{}, max(n, 1))} }

// PerProxy makes a Checker from a function that checks one proxy, each check holding one of
// slots while it runs.
func PerProxy(check func(context.Context, proxy.Proxy) check.Result, slots *Slots) Checker {
	return perProxy{check: check, slots: slots}
}

type perProxy struct {
	check func(context.Context, proxy.Proxy) check.Result
	slots *Slots
}

func (p perProxy) CheckChunk(ctx context.Context, ps []proxy.Proxy) ([]check.Result, error) {
	out := make([]check.Result, len(ps))
	var wg sync.WaitGroup
	for i, px := range ps {
		select {
		case p.slots.sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-p.slots.sem; wg.Done() }()
			out[i] = p.check(ctx, px)
		}()
	}
	wg.Wait()
	return out, ctx.Err()
}
