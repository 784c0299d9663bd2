package scrape

import (
	"context"
	"fmt"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/proxy"
)

// checkStream checks candidates as the scraper streams them, with the checker backend: the
// in-process checker takes each as it comes, at most -c at a time; an external tool runs a
// chunk when it is full, when the stream ends, or when nothing new came for a moment
// (backend.Backend.CheckStream). It has the lifecycle of every long-lived service
// (docs/lifecycle.md), and ends by itself once the stream has ended and every check is emitted.
type checkStream struct {
	in      *stream
	backend *backend.Backend
	emit    func(given proxy.Proxy, r check.Result) // from one goroutine at a time

	life       lifecycle.Once
	stopTaking chan struct{} // closed by Stop: take no new candidate
	cancel     context.CancelFunc
	done       chan struct{}
	err        error // the backend's failures (external runs); written before done is closed
}

func newCheckStream(in *stream, b *backend.Backend, emit func(given proxy.Proxy, r check.Result)) *checkStream {
	return &checkStream{in: in, backend: b, emit: emit, stopTaking: make(chan struct{}), done: make(chan struct{})}
}

// Start starts the checks and returns at once. ctx's values are kept, not its cancellation.
func (c *checkStream) Start(ctx context.Context) error {
	return c.life.Start(func() error { c.start(ctx); return nil })
}

func (c *checkStream) start(ctx context.Context) {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	feed := make(chan proxy.Proxy)
	go func() { // the scraper's candidates to the backend, until the stream ends or Stop
		defer close(feed)
		for {
			cd, ok := c.in.next(c.stopTaking)
			if !ok {
				return
			}
			select {
			case feed <- cd.Proxy:
			case <-c.stopTaking:
				return
			}
		}
	}()
	go func() {
		defer close(c.done)
		defer cancel()
		c.err = c.backend.CheckStream(work, feed, c.emit)
	}()
}

// Done is closed when every check has ended and been emitted (never, if not started).
func (c *checkStream) Done() <-chan struct{} { return c.done }

// Stop stops the checks and returns once they have ended.
//
// Shutdown order:
//  1. refuse: no new candidate is taken;
//  2. drain: checks in flight may finish while ctx lives;
//  3. cut (ctx ended first): they are cancelled (emitted as canceled; an external run is killed
//     by the backend's supervisor);
//  4. wait: the backend's CheckStream returns; bound after the cut: the backend's;
//  5. error: checks the cut cancelled (wrapping ctx's cause).
func (c *checkStream) Stop(ctx context.Context) error {
	return c.life.Stop(ctx, c.stop)
}

func (c *checkStream) stop(cut context.Context) error {
	close(c.stopTaking)
	select {
	case <-c.done:
		return nil
	case <-cut.Done():
	}
	select {
	case <-c.done:
		return nil
	default:
	}
	c.cancel()
	<-c.done
	return fmt.Errorf("checks: stop cut short, checks in flight cancelled: %w", context.Cause(cut))
}

// Err joins the failures of external runs; call it once Done is closed.
func (c *checkStream) Err() error {
	<-c.done
	return c.err
}
