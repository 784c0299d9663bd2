package run

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

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
	p, err := r.startProc(procSpec{
		name: c.spec.Name, argv: c.spec.Command, sh: c.spec.Sh, env: c.spec.Env, dir: c.spec.Dir,
		hub: c.hub, logPath: filepath.Join(r.tmp, "logs", c.spec.Name+".log"),
	})
	if err != nil {
		return &startError{err: err}
	}
	c.mu.Lock()
	c.cur = p
	c.instances = append(c.instances, p)
	n := len(c.instances)
	c.mu.Unlock()
	r.event("start", c.spec.Name, fmt.Sprintf("instance %d", n), p.pid)
	if err := r.waitReady(ctx, c, p, since); err != nil {
		return &startError{started: true, err: fmt.Errorf("component %s not ready: %w", c.spec.Name, err), lines: c.hub.tail(10)}
	}
	r.event("ready", c.spec.Name, "", p.pid)
	return nil
}

// waitReady polls the readiness conditions with a deadline; log lines are matched as they arrive.
func (r *runner) waitReady(ctx context.Context, c *component, p *proc, since int) error {
	rd := c.spec.Ready
	timeout := rd.Timeout.Or(scenario.DefaultReadyTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	died := func() error {
		st, _, _ := p.status()
		return fmt.Errorf("exited (%s) before it was ready", st)
	}
	if rd.Log != "" {
		re := regexp.MustCompile(rd.Log) // validated
		ch, stop := c.hub.wait(re, since)
		defer stop()
		select {
		case <-ch:
		case <-p.done:
			// The last lines may still be in the pipe: give the reader a moment to finish.
			select {
			case <-ch:
			case <-p.pumped:
				select {
				case <-ch:
				default:
					return died()
				}
			case <-ctx.Done():
				return died()
			}
		case <-ctx.Done():
			return fmt.Errorf("no line matching %q within %v", rd.Log, timeout)
		}
	}
	poll := func(what string, ok func() bool) error {
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		for !ok() {
			select {
			case <-t.C:
			case <-p.done:
				if ok() {
					return nil
				}
				return died()
			case <-ctx.Done():
				return fmt.Errorf("%s not ready within %v", what, timeout)
			}
		}
		return nil
	}
	if rd.TCP != "" {
		if err := poll("tcp "+rd.TCP, func() bool {
			conn, err := net.DialTimeout("tcp", rd.TCP, 200*time.Millisecond)
			if err != nil {
				return false
			}
			conn.Close()
			return true
		}); err != nil {
			return err
		}
	}
	if rd.File != "" {
		if err := poll("file "+rd.File, func() bool { _, err := os.Stat(rd.File); return err == nil }); err != nil {
			return err
		}
	}
	if d := rd.Delay.D(); d > 0 {
		// The scenario asked for a fixed delay (for systems with no better readiness signal).
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.done:
			return died()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if p.exited() {
		return died()
	}
	return nil
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
		t := time.NewTimer(time.Until(faultAt.Add(deadline)))
		defer t.Stop()
		select {
		case <-p.done:
			return true
		case <-t.C:
		}
		r.event("stop", c.spec.Name, fmt.Sprintf("no exit within %v of the fault's %s: SIGKILL", deadline, scenario.SignalName(faultSig)), p.pid)
		p.mu.Lock()
		p.late = deadline
		p.mu.Unlock()
		_ = p.cmd.Process.Kill()
		<-p.done
		return false
	}
	p.mu.Lock()
	p.stopReason = reason
	p.mu.Unlock()
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
	t := time.NewTimer(deadline)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
	}
	r.event("stop", c.spec.Name, fmt.Sprintf("no exit within %v: SIGKILL", deadline), p.pid)
	p.mu.Lock()
	p.late = deadline
	p.mu.Unlock()
	_ = p.cmd.Process.Kill()
	<-p.done
	return false
}

// stopComponents stops the components in reverse start order.
func (r *runner) stopComponents() {
	for i := len(r.sc.Components) - 1; i >= 0; i-- {
		c, ok := r.comps[r.sc.Components[i].Name]
		if !ok {
			continue
		}
		if p := c.current(); p != nil && !p.exited() {
			r.stopOne(c, p, "scenario end")
		}
	}
}

var errNoTarget = errors.New("no process matched the target")

func join(args []string) string { return strings.Join(args, " ") }
