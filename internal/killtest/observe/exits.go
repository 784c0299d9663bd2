package observe

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// life is what the observer knows of when one process was alive and when it died, for the
// attributed processes and the parents of attributed processes. Times are bounds, never
// guesses: the process was alive at aliveAt (or later) and had exited by deadBy.
type life struct {
	key     Key
	fd      int    // pidfd, -1 when not (or no longer) watched
	id      uint32 // epoll token, 0 when not watched
	aliveAt time.Time
	deadBy  time.Time // zero while not known to have exited
	comm    string
	cmdline []string // as seen when the watch began (for the evidence about an orphan's parent)
}

func (l *life) dead() bool { return !l.deadBy.IsZero() }

// exits watches processes for their exit: one pidfd per process (pidfd_open works for any
// process, not only children, and for any user) in one epoll set, serviced by one goroutine.
// A pidfd becomes readable when its process exits (becomes a zombie), so the exit is known
// within the goroutine's wake-up latency instead of the 100 ms of the sampling. Every pidfd is
// closed as soon as its exit is recorded (the harness does not accumulate fds).
//
// The loop also runs the liveness polls scheduled after a parent's death (confirm): whether an
// orphan was still alive a delivery bound after its parent died.
type exits struct {
	epfd   int // -1 when pidfds are unavailable: the observer falls back to sampling
	wakefd int // eventfd in the epoll set, token 0: wakes the loop (Stop, new deadlines)
	events []unix.EpollEvent
	// The fields below are guarded by Observer.mu.
	byID    map[uint32]*life
	nextID  uint32
	pending []confirm // liveness polls, unsorted (few)
	err     string    // the first failure to watch a process
	// quietAt is when the latest epoll_wait that did not fill its buffer was called: every
	// process watched then (or since) and not reported by it was alive at that instant (an
	// exited process's pidfd is readable, and level-triggered epoll reports it at once).
	// Only the loop calls epoll_wait while it runs, so no other caller hides a ready fd.
	quietAt time.Time
	syncs   []exitSync // BeginStop waiting for the loop to record every exit already signalled
}

// exitSync is a request, made at `at`, to be told once every exit signalled before is recorded.
type exitSync struct {
	at   time.Time
	done chan struct{}
}

// quietPeriod is how often the loop calls epoll_wait even when nothing happens, so that quietAt
// (the liveness of every watched process) stays within this of the present.
const quietPeriod = 50 * time.Millisecond

// confirm is a liveness poll of an orphan due at a time.
type confirm struct {
	key Key
	due time.Time
}

func newExits() (*exits, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: 0}); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("epoll_ctl(eventfd): %w", err)
	}
	// Probe pidfd_open once on ourselves, so a kernel without it (< 5.3) is said up front.
	fd, err := unix.PidfdOpen(unix.Getpid(), 0)
	if err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("pidfd_open: %w", err)
	}
	unix.Close(fd)
	return &exits{epfd: epfd, wakefd: wakefd, events: make([]unix.EpollEvent, 64), byID: map[uint32]*life{}}, nil
}

// watch opens a pidfd for l's process and adds it to the epoll set. It verifies the start time
// after opening, so the pidfd never refers to a reused pid. A process that is already gone is
// recorded dead by the caller (it returns errGone).
func (x *exits) watch(l *life, startTime func(pid int) (uint64, bool)) error {
	fd, err := unix.PidfdOpen(l.key.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errGone
		}
		return fmt.Errorf("pidfd_open(%d): %w", l.key.PID, err)
	}
	if st, ok := startTime(l.key.PID); !ok || st != l.key.StartTime {
		unix.Close(fd)
		return errGone // the pid now belongs to another process: ours is gone
	}
	x.nextID++
	if x.nextID == 0 {
		x.nextID = 1
	}
	id := x.nextID
	if err := unix.EpollCtl(x.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(id)}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("epoll_ctl(pidfd %d): %w", l.key.PID, err)
	}
	l.fd, l.id = fd, id
	x.byID[id] = l
	return nil
}

var errGone = errors.New("process gone")

// unwatch closes l's pidfd (closing removes it from the epoll set).
func (x *exits) unwatch(l *life) {
	if l.fd < 0 {
		return
	}
	unix.Close(l.fd)
	delete(x.byID, l.id)
	l.fd, l.id = -1, 0
}

// alive polls l's pidfd now: true when the process had not exited at the moment of the poll.
func (x *exits) alive(l *life) (alive, known bool) {
	if l.fd < 0 {
		return false, false
	}
	pfd := []unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, false
		}
		return n == 0, true
	}
}

// wait blocks until a watched process exits, the loop is woken, or timeout passes (negative:
// none). It returns the tokens of the exited processes and the instant the wait returned: every
// one of them had exited by then. The loop passes x.events; others (a drain under the
// observer's lock) their own buffer.
// full says that events was filled: more may be ready.
// called is the instant before the call: quiet (not full) means every watched process not in
// ids was alive then.
func (x *exits) wait(events []unix.EpollEvent, timeout time.Duration) (ids []uint32, called, at time.Time, full bool, err error) {
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	called = time.Now()
	n, err := unix.EpollWait(x.epfd, events, ms)
	at = time.Now()
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return nil, called, at, true, nil // not known to be quiet
		}
		return nil, called, at, true, fmt.Errorf("epoll_wait: %w", err)
	}
	for _, ev := range events[:n] {
		if ev.Fd == 0 {
			var b [8]byte
			_, _ = unix.Read(x.wakefd, b[:])
			continue
		}
		ids = append(ids, uint32(ev.Fd))
	}
	return ids, called, at, n == len(events), nil
}

// wake interrupts wait.
func (x *exits) wake() {
	var one = [8]byte{1}
	_, _ = unix.Write(x.wakefd, one[:])
}

// close releases every pidfd, the eventfd and the epoll set.
func (x *exits) close() {
	for _, l := range x.byID {
		unix.Close(l.fd)
		l.fd, l.id = -1, 0
	}
	clear(x.byID)
	unix.Close(x.wakefd)
	unix.Close(x.epfd)
}

// nextDue is the earliest pending liveness poll (zero when none).
func (x *exits) nextDue() time.Time {
	var t time.Time
	for _, c := range x.pending {
		if t.IsZero() || c.due.Before(t) {
			t = c.due
		}
	}
	return t
}
