package testkit

import (
	"testing"
	"time"
)

// Poll intervals of WaitFor: it starts fast, so a condition that is almost true costs little,
// and backs off, so a long wait does not burn a core of a busy machine.
const (
	firstPoll = time.Millisecond
	maxPoll   = 50 * time.Millisecond
)

// WaitFor calls cond until it returns true and fails t (t.Fatalf, so call it from the test's
// goroutine) when timeout passes first. timeout is a failure bound, not an expectation: choose it
// generously, a busy machine is slow. what says what was awaited, for the failure message.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, func() bool { return cond() }) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// WaitForErr is WaitFor for a condition that explains itself: cond returns nil once the
// condition holds, and otherwise an error saying why not. The last error is the evidence in the
// failure message.
func WaitForErr(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	var last error
	if !poll(timeout, func() bool { last = cond(); return last == nil }) {
		t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, last)
	}
}

// poll calls cond until it is true (true) or timeout has passed (false). cond is always called at
// least once, and once more after the deadline, so a slow first call does not fail by itself.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	interval := firstPoll
	for !cond() {
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(interval) // polling with a deadline, not waiting for an event
		interval = min(2*interval, maxPoll)
	}
	return true
}
