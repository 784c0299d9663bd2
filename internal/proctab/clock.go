package proctab

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
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

// BootTime returns the time the machine booted, to the second: the btime line of /proc/stat.
func BootTime() (time.Time, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return time.Time{}, fmt.Errorf("boot time: %w", err)
	}
	st, err := fs.Stat()
	if err != nil {
		return time.Time{}, fmt.Errorf("boot time from /proc/stat: %w", err)
	}
	return time.Unix(int64(st.BootTime), 0), nil
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
