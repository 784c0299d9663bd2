package metrics

import (
	"context"
	"io"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/proxy"
)

// WrapChecker returns nc with every result of the checkers it builds told to o: a queue
// worker's checks are counted, whichever backend (in-process or --exec) checks them, without
// the worker or the checker knowing. Use it as queue.WorkerConfig.NewChecker.
func WrapChecker(nc queue.NewChecker, o CheckObserver) queue.NewChecker {
	return func(ctx context.Context, opts queue.CheckOptions) (queue.Checker, error) {
		c, err := nc(ctx, opts)
		if err != nil {
			return nil, err
		}
		oc := observed{c: c, o: o}
		if cl, ok := c.(io.Closer); ok {
			// The worker closes checkers that are io.Closers when it stops: keep that.
			return observedCloser{observed: oc, cl: cl}, nil
		}
		return oc, nil
	}
}

type observed struct {
	c queue.Checker
	o CheckObserver
}

func (x observed) CheckChunk(ctx context.Context, ps []proxy.Proxy) ([]check.Result, error) {
	rs, err := x.c.CheckChunk(ctx, ps)
	for _, r := range rs {
		x.o.ObserveCheck(r)
	}
	return rs, err
}

type observedCloser struct {
	observed
	cl io.Closer
}

func (x observedCloser) Close() error { return x.cl.Close() }
