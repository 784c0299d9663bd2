// Package lifecycle holds the one shape of every long-lived service of proxyline and killtest
// (docs/lifecycle.md): Start(ctx) error returns once the service runs; Stop(ctx) error stops it,
// draining while ctx lives and cutting what is left when it ends, and returns once everything the
// service started has ended. The context given to Start bounds the start-up only, never the
// service's life: a service runs until Stop.
//
// Once is the state behind that shape, so that no service writes it again: start and stop run at
// most once each and in that order, Stop is safe without Start and from several goroutines, and
// the context of any Stop call, not only the first, can cut the stop short.
package lifecycle

import (
	"context"
	"errors"
	"sync"
)

// Errors of Once.Start, for errors.Is.
var (
	// ErrStarted is returned by a second Start.
	ErrStarted = errors.New("already started")
	// ErrStopped is returned by a Start after Stop: a stopped service does not start again.
	ErrStopped = errors.New("already stopped")
)

// Once runs a service's start and stop functions at most once each, in that order. The zero value
// is ready to use; a Once must not be copied after first use.
type Once struct {
	mu       sync.Mutex
	started  bool            // guarded by mu: Start was called
	running  bool            // guarded by mu: the start function succeeded
	startEnd chan struct{}   // guarded by mu: closed when the start function returned; nil before Start
	stopping bool            // guarded by mu: Stop was called
	stopEnd  chan struct{}   // closed when the stop is complete; made by the first Stop
	stopErr  error           // the stop function's result; written before stopEnd is closed
	cut      context.Context // the stop function's context; made by the first Stop
	cutStop  context.CancelCauseFunc
}

// Start runs start, unless Start or Stop was called before: then it returns ErrStarted or
// ErrStopped without running it. A start that fails must leave nothing running (undo it inside
// start: not with Stop, which waits for start to return): the service cannot be started again,
// and Stop returns nil without running its stop function.
func (o *Once) Start(start func() error) error {
	o.mu.Lock()
	switch {
	case o.stopping:
		o.mu.Unlock()
		return ErrStopped
	case o.started:
		o.mu.Unlock()
		return ErrStarted
	}
	o.started = true
	o.startEnd = make(chan struct{})
	o.mu.Unlock()

	ok := false
	defer func() {
		o.mu.Lock()
		o.running = ok
		close(o.startEnd)
		o.mu.Unlock()
	}()
	err := start()
	ok = err == nil
	return err
}

// Stop runs stop once, after a Start still in progress has returned, and only if the start
// succeeded; every call waits for that one stop and returns its result. stop gets a context that
// ends when the context of any Stop call ends (with that context's cause): its signal to cut
// what is left. stop must return soon after that (each service documents how soon); the first
// call's stop function is the one that runs, so pass the same one every time. After Stop, Start
// fails with ErrStopped.
func (o *Once) Stop(ctx context.Context, stop func(cut context.Context) error) error {
	o.mu.Lock()
	first := !o.stopping
	if first {
		o.stopping = true
		o.stopEnd = make(chan struct{})
		o.cut, o.cutStop = context.WithCancelCause(context.Background())
	}
	startEnd, end, cut, cutStop := o.startEnd, o.stopEnd, o.cut, o.cutStop
	o.mu.Unlock()

	// This caller's context ending cuts the stop, whoever runs it.
	unhook := context.AfterFunc(ctx, func() { cutStop(context.Cause(ctx)) })
	defer unhook()
	if first {
		o.runStop(startEnd, cut, stop)
	}
	<-end
	return o.stopErr
}

// runStop waits for a Start in progress (startEnd, nil when there was none) and runs stop if the
// service runs.
func (o *Once) runStop(startEnd <-chan struct{}, cut context.Context, stop func(context.Context) error) {
	defer func() {
		o.cutStop(nil) // release the context; its cause stays that of the first cut
		close(o.stopEnd)
	}()
	if startEnd == nil {
		return
	}
	<-startEnd
	o.mu.Lock()
	running := o.running
	o.mu.Unlock()
	if running {
		o.stopErr = stop(cut)
	}
}
