package supervise

import (
	"fmt"

	"github.com/proxyline/proxyline/internal/proctab"
)

// ownerJudge decides, for one sweep, whether the supervisor an entry names (cookie, cgroup
// directory, task directory) is dead. A pid means something only in its own PID namespace, so:
//
//   - an owner in the sweeper's own namespace is alive when a process with its pid and start
//     time exists (read from /proc, which the sweep has checked to be its own namespace's view);
//   - an owner in another namespace is never judged by its pid: it is left alone, with the
//     reason, except by a sweeper in the initial PID namespace (which sees every process of the
//     machine) when no process at all is in the owner's namespace: then the namespace has died,
//     and its supervisor with it.
//
// Any doubt (namespaces of other users' processes unreadable, /proc unreadable) leaves the entry
// alone.
type ownerJudge struct {
	ns      uint64 // the sweeper's PID namespace
	initial bool   // the sweeper is in the initial PID namespace
	known   map[ownerID]verdict

	scanned    bool            // live and unreadable are set
	live       map[uint64]bool // namespaces that have a process
	unreadable int             // processes whose namespace could not be read
	scanErr    error
}

// verdict is what the judge found about one owner: dead (sweep its leftovers), or alive, or
// skipped with a reason (never touched).
type verdict struct {
	dead bool
	skip string // "" unless the owner cannot be judged
}

func newOwnerJudge(ns uint64) *ownerJudge {
	return &ownerJudge{ns: ns, initial: ns == proctab.InitialPIDNamespace, known: map[ownerID]verdict{}}
}

// judge returns the verdict on o, reading /proc once per owner and scanning every process's
// namespace at most once per sweep.
func (j *ownerJudge) judge(o ownerID) verdict {
	if v, ok := j.known[o]; ok {
		return v
	}
	var v verdict
	switch {
	case o.ns == j.ns:
		v.dead = !alive(o.pid, o.start)
	case !j.initial:
		v.skip = fmt.Sprintf("skipped: owner in another PID namespace (pid:[%d]; this sweep runs in pid:[%d]): its pids cannot be judged here; sweep from its namespace, or from the initial one once that namespace is gone", o.ns, j.ns)
	default:
		v = j.judgeNamespace(o.ns)
	}
	j.known[o] = v
	return v
}

// judgeNamespace is the verdict on an owner in namespace ns, from the initial namespace: dead
// only when no process at all is in ns.
func (j *ownerJudge) judgeNamespace(ns uint64) verdict {
	if !j.scanned {
		j.scanned = true
		j.live, j.unreadable, j.scanErr = proctab.PIDNamespaces(j.ns)
	}
	switch {
	case j.scanErr != nil:
		return verdict{skip: fmt.Sprintf("skipped: owner in PID namespace pid:[%d], whose processes cannot be listed: %v", ns, j.scanErr)}
	case j.live[ns]:
		return verdict{skip: fmt.Sprintf("skipped: owner in another PID namespace (pid:[%d]), which still has processes: sweep from inside it", ns)}
	case j.unreadable > 0:
		return verdict{skip: fmt.Sprintf("skipped: owner in another PID namespace (pid:[%d]); the namespaces of %d processes could not be read, so whether it still lives is unknown: run as root", ns, j.unreadable)}
	}
	return verdict{dead: true}
}
