package testkit

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// fdSet is a snapshot of this process's descriptors: number to target.
type fdSet map[int]string

// warmUp makes the runtime open the descriptors it creates lazily and keeps for the process's
// life, so that they are in the baseline: the network poller's epoll fd and its eventfd (created
// on the first pollable descriptor). An epoll fd or eventfd that appears during the tests is then
// not the runtime's, and is reported.
func warmUp() {
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		_ = ln.Close()
	}
}

// openFDs lists this process's descriptors.
func openFDs() (fdSet, error) {
	fds, err := proctab.FDs(os.Getpid())
	if err != nil {
		return nil, err
	}
	set := make(fdSet, len(fds))
	for _, fd := range fds {
		set[fd.Num] = fd.Target
	}
	return set, nil
}

// newFDs returns the descriptors open now that were not open in before, leaving out those Go
// itself keeps (see tolerated), as sorted "fd N -> target" lines.
func newFDs(before fdSet) ([]string, error) {
	now, err := openFDs()
	if err != nil {
		return nil, err
	}
	profiles := profileFiles()
	var leaked []string
	for n, target := range now {
		if before[n] == target || tolerated(n, target) || profiles[filepath.Base(target)] {
			continue
		}
		leaked = append(leaked, fmt.Sprintf("fd %d -> %s", n, target))
	}
	slices.Sort(leaked)
	return leaked, nil
}

// spliceBufSize is internal/poll's maxSpliceSize: the buffer size of its splice pipes.
const spliceBufSize = 1 << 20

// tolerated reports whether descriptor n (with target) is one the Go runtime or standard library
// keeps open on its own after the code that caused it has finished:
//
//   - The splice pipe pool. io.Copy between a file or socket and a TCP socket (net/http's
//     ReadFrom, the rotator's tunnels, reverse proxies) splices through a pipe from
//     internal/poll's sync.Pool. Pooled pipes are closed lazily, when the garbage collector
//     drops them from the pool, so they outlive the copy that made them. They are recognised
//     exactly: a non-blocking pipe whose buffer was set to internal/poll's maxSpliceSize (1 MiB).
//     A pipe made by os.Pipe is non-blocking too, but keeps the kernel's 64 KiB default, so a
//     leaked os.Pipe is still reported.
//   - pidfds of processes that are gone. An os.Process (from os.FindProcess, or a Cmd whose
//     Wait was not the one that reaped it) holds a pidfd until Release or until the garbage
//     collector finalises it. Once the process has exited and been reaped the pidfd pins nothing
//     (pidfd_send_signal says ESRCH). A pidfd of a process that still runs is reported, and the
//     process too if it is our child.
//
// The network poller's epoll fd and eventfd are not tolerated here: warmUp puts them in the
// baseline.
func tolerated(n int, target string) bool {
	switch proctab.ClassOf(target) {
	case proctab.ClassPipe:
		return splicePipe(n)
	case proctab.ClassPidfd:
		err := unix.PidfdSendSignal(n, 0, nil, 0)
		return errors.Is(err, unix.ESRCH)
	}
	return false
}

// splicePipe reports whether fd n is one of internal/poll's splice pipes.
func splicePipe(n int) bool {
	fl, err := unix.FcntlInt(uintptr(n), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_NONBLOCK == 0 {
		return false
	}
	size, err := unix.FcntlInt(uintptr(n), unix.F_GETPIPE_SZ, 0)
	return err == nil && size == spliceBufSize
}

// profileFiles returns the base names of the files the testing package writes for -test.*profile
// and -test.trace: it opens them before the tests and leaves them open after m.Run (the CPU
// profile and the trace are written until the process exits).
func profileFiles() map[string]bool {
	names := make(map[string]bool)
	for _, f := range []string{"test.cpuprofile", "test.memprofile", "test.blockprofile",
		"test.mutexprofile", "test.trace", "test.coverprofile"} {
		if fl := flag.Lookup(f); fl != nil && fl.Value.String() != "" {
			names[filepath.Base(fl.Value.String())] = true
		}
	}
	return names
}

// describeFDs joins leak lines for a report.
func describeFDs(lines []string) string { return strings.Join(lines, "\n\t") }
