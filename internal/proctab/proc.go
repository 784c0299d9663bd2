package proctab

import "time"

// Proc is one process as seen in /proc/<pid>/stat.
type Proc struct {
	PID       int
	PPID      int
	PGID      int
	SID       int
	State     byte   // R, S, D, Z, T, t, X, I, ...
	StartTime uint64 // clock ticks since boot (stat field 22); with PID, the process's identity
	Comm      string // executable name as the kernel keeps it (at most 15 bytes), may contain spaces and ')'
	Threads   int
	RSSPages  int64  // resident set size in pages (stat field 24)
	UTime     uint64 // user CPU time in clock ticks
	STime     uint64 // system CPU time in clock ticks
}

// Key is a process identity that survives PID reuse.
type Key struct {
	PID       int
	StartTime uint64
}

// Key returns the identity of p.
func (p Proc) Key() Key { return Key{PID: p.PID, StartTime: p.StartTime} }

// ClockTicks is the kernel's USER_HZ, the unit of StartTime, UTime and STime. It is 100 on
// every Linux architecture Go supports.
const ClockTicks = 100

// TicksToDuration converts clock ticks to a duration.
func TicksToDuration(ticks uint64) time.Duration {
	return time.Duration(ticks) * (time.Second / ClockTicks)
}
