package run

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
	"github.com/proxyline/proxyline/internal/killtest/human"
	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

// pollEvery is the period of readiness and trigger polling (TCP dials, file checks, processes).
const pollEvery = 25 * time.Millisecond

// startError is a component that could not start (started=false: the harness's problem, e.g.
// a missing program) or did not become ready (started=true: the system's failure).
type startError struct {
	started bool
	err     error
	lines   []string // last output lines, as evidence
}

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// startComponent starts (or restarts) a component and waits until it is ready.
func (r *runner) startComponent(ctx context.Context, c *component) error {
	since := c.hub.count()
	from := time.Now()
	p, err := r.startProc(procSpec{
		name: c.spec.Name, argv: c.spec.Command, sh: c.spec.Sh, env: c.spec.Env, dir: c.spec.Dir,
		hub: c.hub, logPath: filepath.Join(r.tmp, "logs", c.spec.Name+".log"),
	})
	if err != nil {
		return &startError{err: err}
	}
	n := c.started(p)
	r.event("start", c.spec.Name, fmt.Sprintf("instance %d", n), p.pid)
	err = r.waitReady(ctx, c, p, since)
	r.live.startup(detect.Window{Name: fmt.Sprintf("%s#%d", c.spec.Name, n), From: from, To: time.Now()})
	if err != nil {
		return &startError{started: true, err: fmt.Errorf("component %s not ready: %w", c.spec.Name, err), lines: c.hub.tail(10)}
	}
	r.event("ready", c.spec.Name, "", p.pid)
	return nil
}

// diedBeforeReady is the error of a main process that exited before it was ready, saying how.
func diedBeforeReady(p *proc) error {
	st, _, _ := p.status()
	return fmt.Errorf("exited (%s) before it was ready", st)
}

// waitReady waits for each readiness condition in turn (log line, TCP port, file, delay), all
// within the ready timeout; it fails as soon as the process exits.
func (r *runner) waitReady(ctx context.Context, c *component, p *proc, since int) error {
	rd := c.spec.Ready
	timeout := rd.Timeout.Or(scenario.DefaultReadyTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if rd.Log != "" {
		if err := waitLogLine(ctx, c.hub, p, rd.Log, since, timeout); err != nil {
			return err
		}
	}
	if rd.TCP != "" {
		if err := pollReady(ctx, p, "tcp "+rd.TCP, timeout, func() bool { return dialable(rd.TCP) }); err != nil {
			return err
		}
	}
	if rd.File != "" {
		if err := pollReady(ctx, p, "file "+rd.File, timeout, func() bool { _, err := os.Stat(rd.File); return err == nil }); err != nil {
			return err
		}
	}
	if d := rd.Delay.D(); d > 0 {
		if err := waitDelay(ctx, p, d); err != nil {
			return err
		}
	}
	if p.exited() {
		return diedBeforeReady(p)
	}
	return nil
}

// waitLogLine waits for a line of the component's output at position ≥ since matching expr
// (validated). Lines matched as they arrive; after an exit, the lines still in the pipe count.
func waitLogLine(ctx context.Context, hub *lineHub, p *proc, expr string, since int, timeout time.Duration) error {
	ch, stop := hub.wait(regexp.MustCompile(expr), since)
	defer stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no line matching %q within %v", expr, timeout)
	case <-p.done:
	}
	// The last lines may still be in the pipe: give the reader a moment to finish.
	select {
	case <-ch:
		return nil
	case <-p.pumped:
		select {
		case <-ch:
			return nil
		default:
			return diedBeforeReady(p)
		}
	case <-ctx.Done():
		return diedBeforeReady(p)
	}
}

// pollReady polls ok every pollEvery until it holds, the process exits or ctx ends.
func pollReady(ctx context.Context, p *proc, what string, timeout time.Duration, ok func() bool) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for !ok() {
		select {
		case <-t.C:
		case <-p.done:
			if ok() {
				return nil
			}
			return diedBeforeReady(p)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %v", what, timeout)
		}
	}
	return nil
}

// dialable reports whether a TCP connection to addr succeeds.
func dialable(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// waitDelay waits the fixed delay a scenario asked for (for systems with no better readiness
// signal), failing when the process exits meanwhile.
func waitDelay(ctx context.Context, p *proc, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-p.done:
		return diedBeforeReady(p)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopOne stops a process per its component's stop spec: signal (+SIGCONT, so a stopped process
// can act on it), wait up to the deadline, then SIGKILL. It returns whether it exited in time.
func (r *runner) stopOne(c *component, p *proc, reason string) (inTime bool) {
	p.mu.Lock()
	killed, faultSig, faultAt := p.faultKill, p.signaled, p.signaledAt
	byFault := p.byFault
	p.mu.Unlock()
	if killed {
		<-p.done // SIGKILL is on its way; nothing to stop gracefully
		return true
	}
	if p.exited() {
		return true
	}
	st := c.spec.Stop
	sig := syscall.SIGTERM
	if st.Signal != "" {
		sig, _ = scenario.ParseSignal(st.Signal) // validated
	}
	deadline := st.Deadline.Or(scenario.DefaultStopDeadline)
	if byFault && faultSig == sig {
		// A fault already sent the stop signal: a second one would mean "force" to many
		// programs. Give it the rest of its deadline, counted from the fault.
		r.event("stop", c.spec.Name, fmt.Sprintf("%s: already sent %s by a fault; waiting", reason, scenario.SignalName(faultSig)), p.pid)
		return r.waitOrKill(c, p, faultAt.Add(deadline), deadline,
			fmt.Sprintf("no exit within %v of the fault's %s: SIGKILL", deadline, scenario.SignalName(faultSig)))
	}
	p.mu.Lock()
	p.stopReason = reason
	p.mu.Unlock()
	stopSig := detect.Signal{At: time.Now(), Key: p.key(), Signal: sig, By: fmt.Sprintf("stop of %s (%s)", c.spec.Name, reason)}
	if st.Group {
		stopSig.Key, stopSig.Group = observe.Key{}, p.pid
	}
	r.live.sent(stopSig)
	if err := p.signal(sig, st.Group, false); err != nil {
		r.event("error", c.spec.Name, fmt.Sprintf("%s: %v", reason, err), p.pid)
	}
	if sig != syscall.SIGKILL && sig != syscall.SIGCONT {
		_ = p.signal(syscall.SIGCONT, st.Group, false)
		p.mu.Lock()
		p.signaled = sig // SIGCONT is a helper, the stop signal is what counts
		p.mu.Unlock()
	}
	r.event("stop", c.spec.Name, fmt.Sprintf("%s: %s, deadline %v", reason, scenario.SignalName(sig), deadline), p.pid)
	return r.waitOrKill(c, p, time.Now().Add(deadline), deadline, fmt.Sprintf("no exit within %v: SIGKILL", deadline))
}

// waitOrKill waits until end for p to exit, then SIGKILLs it (recorded, for the orphan
// detector's evidence) and waits for that. It says whether p exited in time.
func (r *runner) waitOrKill(c *component, p *proc, end time.Time, deadline time.Duration, why string) bool {
	t := time.NewTimer(time.Until(end))
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
	}
	r.event("stop", c.spec.Name, why, p.pid)
	p.mu.Lock()
	p.late = deadline
	p.mu.Unlock()
	r.live.sent(detect.Signal{At: time.Now(), Key: p.key(), Signal: syscall.SIGKILL, By: "SIGKILL after the stop deadline of " + c.spec.Name})
	_ = p.cmd.Process.Kill()
	<-p.done
	return false
}

// stopComponents stops the components in reverse start order. Between two stops it lets the
// processes the last stop orphaned show whether they end by themselves (settleOrphans): the
// next stop must not end them for them.
func (r *runner) stopComponents() {
	for i := len(r.sc.Components) - 1; i >= 0; i-- {
		c := r.live.comps[r.sc.Components[i].Name]
		if p := c.current(); p != nil && !p.exited() {
			r.stopOne(c, p, "scenario end")
			if i > 0 {
				r.settleOrphans(c.spec.Name)
			}
		}
	}
}

// settleOrphans waits, after the stop of one component and before the stop of the next, until
// every process orphaned since the stop phase began has either ended or been seen alive more
// than the orphan grace after its parent's death (the orphan detector then counts it, whatever
// ends it later). Without it, a process that the stop of a worker orphaned and that only a
// sibling's stop ends (a client blocked on a server the scenario stops next) would be gone
// before the check looks, though in production nothing would ever end it. It returns at once
// when nothing was orphaned (a well-behaved system loses no time) and waits at most the grace
// plus a second.
func (r *runner) settleOrphans(stopped string) {
	oc := r.sc.Expect.Orphans
	if oc != nil && !oc.Enabled {
		return
	}
	grace := scenario.DefaultOrphanGrace
	if oc != nil {
		grace = oc.Grace.Or(grace)
	}
	obs := r.live.obs
	stopAt := obs.StopPhase()
	began := time.Now()
	end := began.Add(grace + time.Second)
	var waited []int
	for {
		if err := obs.Refresh(); err != nil {
			r.event("error", stopped, fmt.Sprintf("settle orphans: %v", err))
			return
		}
		pending := stopOrphans(obs.Alive(), stopAt, grace, time.Now())
		for _, pid := range pending {
			if !slices.Contains(waited, pid) {
				waited = append(waited, pid)
			}
		}
		if len(pending) == 0 || time.Now().After(end) {
			break
		}
		time.Sleep(settleEvery) // polling the process table with a deadline
	}
	if len(waited) > 0 {
		r.event("settle", stopped, fmt.Sprintf("waited %s for %d process(es) orphaned by the stop before stopping the next component",
			human.Duration(time.Since(began)), len(waited)), waited...)
	}
}

// settleEvery is settleOrphans' polling period (a full sample each time: not too often).
const settleEvery = 100 * time.Millisecond

// stopOrphans returns the pids of the live processes orphaned at or after stopAt that are not
// yet known to have outlived their parent by more than grace.
func stopOrphans(alive []observe.Process, stopAt time.Time, grace time.Duration, now time.Time) []int {
	var out []int
	for _, p := range alive {
		if p.Own || p.Orphaned == nil || p.State == 'Z' || p.State == 'X' || p.Orphaned.ParentDeadBy.Before(stopAt) {
			continue
		}
		if lo, _ := p.WithoutParent(now); lo <= grace {
			out = append(out, p.PID)
		}
	}
	return out
}

func join(args []string) string { return strings.Join(args, " ") }
