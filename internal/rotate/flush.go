package rotate

import (
	"net/http"
	"sync"
	"time"
)

// headFlushDelay is how long a response head waits for the first body bytes before it is sent
// alone: long enough that a body already received goes out in the same write as its head even
// on a busy machine, short enough that a client of a late body sees the head early.
const headFlushDelay = 5 * time.Millisecond

// flushWriter is the ResponseWriter the ReverseProxy writes a response to: every body write is
// sent to the client at once (streams stay streams), and the head goes in the same write as the
// first body bytes, or alone after headFlushDelay when they are late.
//
// Why not ReverseProxy's FlushInterval -1: its copy arms time.AfterFunc(-1, flush) for every
// response, so each one costs a timer goroutine, a lock handoff and a write of its head alone
// before the write of its body: two write(2)s per response where one does, 13 % of the
// rotator's CPU profile under scripts/bench-rotate.sh. ReverseProxy still does so itself for a
// response without Content-Length (chunked) or of text/event-stream, whatever FlushInterval is.
type flushWriter struct {
	http.ResponseWriter
	delay time.Duration // headFlushDelay (tests use a longer one)
	mu    sync.Mutex    // serializes writes and flushes with the head's timer
	timer *time.Timer   // flushes the head alone; nil before the final head
	sent  bool          // the head went out (with a body write, or by the timer)
	done  bool          // the handler returned: the ResponseWriter must not be used any more
}

// WriteHeader passes the head on and arms its timer; 1xx heads go out at once (net/http's).
func (f *flushWriter) WriteHeader(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ResponseWriter.WriteHeader(code)
	if code >= 200 && f.timer == nil {
		f.timer = time.AfterFunc(f.delay, f.flushHead)
	}
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.ResponseWriter.Write(p)
	if err != nil {
		return n, err
	}
	f.sent = true
	return n, http.NewResponseController(f.ResponseWriter).Flush()
}

// FlushError flushes under the writer's lock (ReverseProxy's own flushing of chunked responses
// goes through it, from its own timer's goroutine).
func (f *flushWriter) FlushError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return nil
	}
	f.sent = true
	return http.NewResponseController(f.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the server's writer (Hijack for 101 upgrades).
func (f *flushWriter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// flushHead sends the head alone when no body write took it along in time.
func (f *flushWriter) flushHead() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sent && !f.done {
		f.sent = true
		_ = http.NewResponseController(f.ResponseWriter).Flush()
	}
}

// finish ends the writer's use when the handler returns; the timer never touches it afterwards.
func (f *flushWriter) finish() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done = true
	if f.timer != nil {
		f.timer.Stop()
	}
}
