package run

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/proxyline/proxyline/internal/proctab"
)

// checkPorts makes sure every loopback TCP port the scenario names (expect.ports, and the
// components' ready.tcp addresses) is free before anything starts. A port some other process
// already holds is not the system's doing, and would make `ready` pass on the wrong listener or
// `ports` fail for the wrong reason: the run cannot be judged (a harness error, exit 2), and
// the error names the holder.
func (r *runner) checkPorts() error {
	type want struct{ addr, why string }
	var wants []want
	if pc := r.sc.Expect.Ports; pc != nil && pc.Enabled {
		for _, p := range pc.Ports {
			wants = append(wants, want{net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), "expect.ports"})
		}
	}
	for _, c := range r.sc.Components {
		if c.Ready.TCP != "" {
			wants = append(wants, want{c.Ready.TCP, "ready.tcp of " + c.Name})
		}
	}
	var errs []error
	for _, w := range wants {
		ln, err := net.Listen("tcp", w.addr)
		if err == nil {
			ln.Close()
			continue
		}
		errs = append(errs, fmt.Errorf("port %s (%s) is already in use before the run%s: it is not the system's, so the run cannot be judged; free the port or let the scenario pick one (${PORT1}…${PORT4})",
			w.addr, w.why, holderText(w.addr)))
	}
	return errors.Join(errs...)
}

// holderText names the processes listening on addr's port (" by pid N (`cmd`)"), or says why it
// cannot.
func holderText(addr string) string {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return ""
	}
	// Only a listener on host or a wildcard holds addr: the lab, for one, listens on the same
	// port at many other loopback addresses (they were named as holders too).
	hs, unreadable, err := proctab.PortHolders(host, port)
	switch {
	case err != nil:
		return fmt.Sprintf(" (its holder could not be found: %v)", err)
	case len(hs) == 0 && unreadable > 0:
		return fmt.Sprintf(" (by a process whose fds this user cannot read: %d such)", unreadable)
	case len(hs) == 0:
		return " (no process listens on it: a connection's local port holds it)"
	}
	var by []string
	for _, h := range hs {
		by = append(by, fmt.Sprintf("pid %d (`%s`)", h.PID, h.Command()))
	}
	return " by " + strings.Join(by, ", ")
}
