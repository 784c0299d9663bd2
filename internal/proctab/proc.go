package proctab

import "time"

// Proc is one process as seen in /proc/<pid>/stat.
type Proc struct {
	PID       int
	PPID      int
	PGID      int
	SID       int
	State     byte   // R, S, D, Z, T, t, X, I, ...
	Flags     uint32 // the kernel's per-process flags (stat field 9, PF_*)
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

// pfKthread is PF_KTHREAD of include/linux/sched.h: the task is a kernel thread.
const pfKthread = 0x00200000

// KernelThread reports whether p is a kernel thread (kthreadd and its children: kworker/...,
// ksoftirqd/...). Kernel threads have no user memory, so no environment, and rename themselves.
func (p Proc) KernelThread() bool { return p.Flags&pfKthread != 0 || p.PID == 2 || p.PPID == 2 }

// ClockTicks is the kernel's USER_HZ, the unit of StartTime, UTime and STime. It is 100 on
// every Linux architecture Go supports.
const ClockTicks = 100

// TicksToDuration converts clock ticks to a duration.
func TicksToDuration(ticks uint64) time.Duration {
	return time.Duration(ticks) * (time.Second / ClockTicks)
}
