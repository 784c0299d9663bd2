// Package signals is the two-stage stop every proxyline program has: the first SIGINT or SIGTERM
// cancels a context (drain: finish or hand back what is running), the second closes a channel
// (force: stop at once). Only a program's top level (its Main) uses it; library packages never
// install signal handlers.
package signals

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Notify returns a context canceled by the first SIGINT or SIGTERM and a channel closed by the
// second. stop stops listening, cancels the context and ends the goroutine; call it when the
// program ends (it may be called more than once).
func Notify(parent context.Context) (ctx context.Context, force <-chan struct{}, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	forced := make(chan struct{})
	done := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		select {
		case <-sigs:
			close(forced)
		case <-done:
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
			cancel()
		})
	}
	return ctx, forced, stop
}
