package queue

import (
	"cmp"
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/proxy"
)

// PerProxy makes a Checker from a function that checks one proxy, running up to parallel checks
// of a chunk at once (default 64).
func PerProxy(check func(context.Context, proxy.Proxy) check.Result, parallel int) Checker {
	return perProxy{check: check, parallel: cmp.Or(parallel, 64)}
}

type perProxy struct {
	check    func(context.Context, proxy.Proxy) check.Result
	parallel int
}

func (p perProxy) CheckChunk(ctx context.Context, ps []proxy.Proxy) ([]check.Result, error) {
	out := make([]check.Result, len(ps))
	var g errgroup.Group
	g.SetLimit(p.parallel)
	for i, px := range ps {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			out[i] = p.check(ctx, px)
			return nil
		})
	}
	_ = g.Wait()
	return out, ctx.Err()
}
