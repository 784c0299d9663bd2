package detect

import (
	"fmt"
	"slices"
	"strings"

	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/proctab"
)

// InheritOptions configures InheritedFDs.
type InheritOptions struct {
	// Commands selects the checker processes: attributed processes whose command line
	// contains one of these strings. Required: pre-fork servers (Celery prefork, gunicorn)
	// share pipes and sockets with their workers on purpose, so the rule cannot apply to all.
	Commands []string
}

// InheritedFDs is the fd-inheritance detector: a checker process must hold only fds 0–2 of its
// parent's open files. It fails for every selected process holding an fd ≥ 3 of class pipe or
// socket (their inodes are unique) that another attributed process also holds at the same
// enrichment: an fd inherited because it lacked O_CLOEXEC, the reason a killed worker's
// checker can keep its parent's pipes and sockets alive. Sockets the checker opened itself are
// not counted. Processes are inspected at the 1 Hz enrichment (and at marks), so checkers that
// live less than a second may never be seen: then the answer is unknown.
func InheritedFDs(o *observe.Observer, opts InheritOptions) Result {
	return judgeInherited(o.Processes(), opts)
}

func judgeInherited(procs []observe.Process, opts InheritOptions) Result {
	const check = "fd-inheritance"
	if len(opts.Commands) == 0 {
		return unknown(check, "no checker command configured")
	}
	// Who holds each pipe/socket target, among processes enriched at the same moment.
	type holder struct {
		pid     int
		cmdline string
	}
	holders := map[string][]holder{}
	for _, p := range procs {
		for _, fd := range p.FDs {
			if fd.Class == proctab.ClassPipe || fd.Class == proctab.ClassSocket {
				holders[fd.Target] = append(holders[fd.Target], holder{p.PID, cmdline(p.Cmdline, p.Comm)})
			}
		}
	}
	res := Result{Check: check}
	seen := 0
	for _, p := range procs {
		cl := cmdline(p.Cmdline, p.Comm)
		if p.FDs == nil || !slices.ContainsFunc(opts.Commands, func(c string) bool { return strings.Contains(cl, c) }) {
			continue
		}
		seen++
		var leaks []string
		for _, fd := range p.FDs {
			if fd.Num < 3 || (fd.Class != proctab.ClassPipe && fd.Class != proctab.ClassSocket) {
				continue
			}
			for _, h := range holders[fd.Target] {
				if h.pid != p.PID {
					leaks = append(leaks, fmt.Sprintf("fd %d → %s also open in pid %d (%s)", fd.Num, fd.Target, h.pid, h.cmdline))
					break
				}
			}
		}
		if len(leaks) == 0 {
			continue
		}
		e := evidenceOf(p, p.LastSeen)
		e.Class = "inherited-fd"
		e.Detail = "inherited (opened without O_CLOEXEC): " + limitJoin(leaks, 8)
		res.Evidence = append(res.Evidence, e)
	}
	switch {
	case seen == 0:
		return unknown(check, fmt.Sprintf("no process matching %q was inspected (checkers living under a second may be missed)", opts.Commands))
	case len(res.Evidence) == 0:
		return pass(check, fmt.Sprintf("%d checker process(es) inspected, none holds an inherited pipe or socket", seen))
	}
	res.Verdict = Fail
	res.Summary = fmt.Sprintf("%d of %d checker process(es) hold inherited pipes or sockets", len(res.Evidence), seen)
	return res
}
