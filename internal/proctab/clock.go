package proctab

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// BootTicks returns the time since boot in clock ticks: the clock and unit of Proc.StartTime
// (the kernel counts start times on CLOCK_BOOTTIME, which keeps running during suspend). A
// process with StartTime ≥ BootTicks() taken at some instant started at that instant or later
// (or up to one tick before it).
func BootTicks() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_BOOTTIME): %w", err)
	}
	return uint64(ts.Nano()) / uint64(time.Second/ClockTicks), nil
}

// StartedAt returns the wall-clock time a process with this StartTime started, to a tick
// (10 ms): the start of that tick, so never later than the real start.
func StartedAt(startTime uint64) time.Time {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}
	}
	return now.Add(-time.Duration(ts.Nano()) + TicksToDuration(startTime))
}
