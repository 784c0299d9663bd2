package external

import (
	"context"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/proxy"
)

// Results checks a chunk like CheckChunk and returns one check.Result per proxy of ps, in order,
// so that callers handle an external tool like the in-process checker: the proxies the tool
// reported live are check.Alive (with the scheme the tool found for a bare host:port), the others
// check.Dead, since a tool says only which proxies work. Timings are the whole run's.
func (c *Checker) Results(ctx context.Context, ps []proxy.Proxy) ([]check.Result, error) {
	start := time.Now()
	live, err := c.CheckChunk(ctx, ps)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	// CheckChunk returns proxies of the chunk, matched by address; a bare one may come back with
	// the scheme the tool found.
	byAddr := make(map[string][]proxy.Proxy, len(live))
	for _, p := range live {
		byAddr[p.Addr()] = append(byAddr[p.Addr()], p)
	}
	out := make([]check.Result, len(ps))
	for i, p := range ps {
		r := check.Result{Proxy: p, Class: check.Dead, Err: "the external checker did not report it alive",
			Total: now.Sub(start), CheckedAt: now}
		for _, lp := range byAddr[p.Addr()] {
			if p.Scheme == proxy.Unknown || lp.Scheme == p.Scheme {
				r.Proxy, r.Class, r.Err = lp, check.Alive, ""
				break
			}
		}
		out[i] = r
	}
	return out, nil
}
