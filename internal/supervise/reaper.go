package supervise

import (
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/proxyline/proxyline/internal/proctab"
)

// reaper adopts and reaps orphans of our tasks that were re-parented to us (we are a child
// subreaper). It never calls wait4(-1): that would steal exit statuses from exec.Cmd.Wait
// (HYGIENE trap 13). A process is adopted when it is alive, its parent is us, it is not one of
// the processes we started, and it carries a cookie naming us; once adopted it is reaped by its
// pidfd when it ends. Processes of other code in the same program never carry our cookie and
// are left alone.
type reaper struct {
	s       *Supervisor
	every   time.Duration
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
	adopted map[int]member // only touched by run
}

func newReaper(s *Supervisor) *reaper {
	return &reaper{s: s, every: time.Second, done: make(chan struct{}), stopped: make(chan struct{}), adopted: map[int]member{}}
}

func (r *reaper) run() {
	defer close(r.stopped)
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		r.scan()
		select {
		case <-r.done:
			r.scan()
			for _, m := range r.adopted {
				m.close()
			}
			return
		case <-t.C:
		}
	}
}

func (r *reaper) stop() {
	r.once.Do(func() { close(r.done) })
	<-r.stopped
}

// scan reaps adopted orphans that ended and adopts new ones.
func (r *reaper) scan() {
	for pid, m := range r.adopted {
		if m.exited() {
			m.reap()
			m.close()
			delete(r.adopted, pid)
			r.s.log.Debug("reaped orphan", "pid", pid)
		}
	}
	s := r.s
	s.startMu.Lock()
	defer s.startMu.Unlock()
	children, err := proctab.OwnChildren()
	if err != nil {
		s.log.Warn("orphan scan", "err", err)
		return
	}
	for _, pid := range children {
		if _, ok := r.adopted[pid]; ok || s.isChild(pid) {
			continue
		}
		pi, err := readProc(pid)
		if err != nil || pi.ppid != s.self.pid {
			continue
		}
		if pi.state == "Z" {
			// A zombie has no environ left; it is ours if it died in one of our task cgroups.
			if cg, _ := proctab.Cgroup(pid); s.ownerDir != "" && strings.Contains(cg, "/"+filepath.Base(s.ownerDir)+"/") {
				if m, err := openMember(pid, pi.start, nil); err == nil {
					m.reap()
					m.close()
				}
			}
			continue
		}
		m, err := openMember(pid, pi.start, s.ownsCookie)
		if err != nil {
			continue
		}
		r.adopted[pid] = m
		s.log.Info("adopted orphan of a task", "pid", pid)
	}
}

// ownsCookie reports whether pid carries a cookie naming this supervisor.
func (s *Supervisor) ownsCookie(pid int) bool {
	c, err := ParseCookie(procCookie(pid))
	return err == nil && c.owner() == s.owner
}
