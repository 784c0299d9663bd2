package watch

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/internal/secret"
)

// procInfo is what is read of a process once (and again after it execs: its comm changed).
type procInfo struct {
	comm      string
	cmdline   string // argv joined by spaces, secrets masked; "[comm]" when unreadable or empty
	cookie    bool   // carries the system's cookie
	envDenied bool   // the cookie was asked for and its environment could not be read
	cgroup    string // "" unless the file names cgroups
}

// membership is how a process belongs to the system; the zero value: it does not.
type membership struct {
	root   bool   // matches system.roots
	cookie bool   // carries the cookie
	cgroup bool   // in one of system.cgroups
	rule   string // the first parent rule whose match it matches
}

func (m membership) member() bool { return m.root || m.cookie || m.cgroup || m.rule != "" }

// how says why a process belongs, for evidence.
func (m membership) how() string {
	var parts []string
	if m.root {
		parts = append(parts, "root")
	}
	if m.cookie {
		parts = append(parts, "cookie")
	}
	if m.cgroup {
		parts = append(parts, "cgroup")
	}
	if m.rule != "" {
		parts = append(parts, "rule "+m.rule)
	}
	return strings.Join(parts, ", ")
}

// info returns the details of p, reading them when p is new or exec'ed since.
func (w *Watcher) info(p *proctab.Proc) *procInfo {
	k := p.Key()
	if in, ok := w.known[k]; ok && in.comm == p.Comm {
		return in
	}
	in := &procInfo{comm: p.Comm, cmdline: "[" + p.Comm + "]"}
	if argv, err := proctab.Cmdline(p.PID); err == nil && len(argv) > 0 {
		in.cmdline = secret.Redact(strings.Join(argv, " "))
	}
	// PID 1 is the service manager the system's orphans re-parent to, never part of a system;
	// its environment may be closed even to root.
	if w.plan.cookieName != "" && p.PID != 1 {
		in.cookie, in.envDenied = w.hasCookie(p.PID)
	}
	if len(w.plan.cgroups) > 0 {
		in.cgroup, _ = proctab.Cgroup(p.PID)
	}
	w.known[k] = in
	return in
}

// hasCookie reads pid's environment for the cookie; denied reports an environment that exists
// but could not be read (another user's process, without the privilege).
func (w *Watcher) hasCookie(pid int) (has, denied bool) {
	env, err := proctab.Environ(pid)
	if err != nil {
		return false, errors.Is(err, fs.ErrPermission) && w.couldBeOurs(pid)
	}
	for _, kv := range env {
		if w.plan.cookieKV != "" {
			if kv == w.plan.cookieKV {
				return true, false
			}
		} else if strings.HasPrefix(kv, w.plan.cookieName+"=") {
			return true, false
		}
	}
	return false, false
}

// membershipOf says how p (with its details in) belongs to the system.
func (w *Watcher) membershipOf(in *procInfo) membership {
	m := membership{root: anyMatch(w.plan.roots, in.cmdline), cookie: in.cookie}
	for _, cg := range w.plan.cgroups {
		if in.cgroup == cg || strings.HasPrefix(in.cgroup, cg+"/") {
			m.cgroup = true
			break
		}
	}
	for _, r := range w.plan.rules {
		if r.match.MatchString(in.cmdline) {
			m.rule = r.name
			break
		}
	}
	return m
}

// classify reads the details of every process of the snapshot (kernel threads, zombies and the
// watcher itself aside) and records the members. It forgets the details of processes gone.
func (w *Watcher) classify() {
	live := make(map[proctab.Key]bool, len(w.procs))
	w.byPID = make(map[int]*proctab.Proc, len(w.procs))
	w.members = map[proctab.Key]membership{}
	w.denied = 0
	for i := range w.procs {
		p := &w.procs[i]
		w.byPID[p.PID] = p
		if p.KernelThread() || p.State == 'Z' || p.PID == w.self {
			continue
		}
		live[p.Key()] = true
		in := w.info(p)
		if in.envDenied {
			w.denied++
		}
		if m := w.membershipOf(in); m.member() {
			w.members[p.Key()] = m
		}
	}
	for k := range w.known {
		if !live[k] {
			delete(w.known, k)
		}
	}
}

// couldBeOurs reports whether a process whose environment this watch may not read could still
// belong to the system. A watch that is not root runs as the system's user: a process of another
// user cannot be the system's (becoming another user takes a privilege the system has not got);
// one of its own user that it may not read (not dumpable) could.
func (w *Watcher) couldBeOurs(pid int) bool {
	euid := os.Geteuid()
	if euid == 0 {
		return true
	}
	uid, err := proctab.UID(pid)
	return err == nil && uid == euid
}
