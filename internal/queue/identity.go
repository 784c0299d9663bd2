package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/proxyline/proxyline/internal/proctab"
)

// Identity names a worker process so that it can be recognised as dead without confusing it with
// a later process that got the same pid, nor with a process of another PID namespace that has the
// same pid: host, PID namespace (inode of /proc/<pid>/ns/pid), pid in that namespace and process
// start time (field 22 of /proc/<pid>/stat, clock ticks since boot). Its String form is the River
// client ID, "<host>/<pidns>/<pid>/<starttime>", which River records in each job's attempted_by
// (at most 64+1+20+1+10+1+20 bytes in theory, 95 or so in practice: River allows 100; a host
// name is at most 64 bytes on Linux).
type Identity struct {
	Host      string
	PIDNS     uint64
	PID       int
	StartTime uint64
}

func (id Identity) String() string {
	return id.Host + "/" + strconv.FormatUint(id.PIDNS, 10) + "/" + strconv.Itoa(id.PID) + "/" + strconv.FormatUint(id.StartTime, 10)
}

// ParseIdentity parses a client ID written by String. Client IDs of other programs, and those of
// the earlier format without the PID namespace, do not parse.
func ParseIdentity(s string) (Identity, error) {
	// The host may not contain '/', so there are exactly four fields.
	f := strings.Split(s, "/")
	if len(f) != 4 || f[0] == "" {
		return Identity{}, fmt.Errorf("client id %q: not host/pidns/pid/starttime", s)
	}
	ns, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || ns == 0 || strconv.FormatUint(ns, 10) != f[1] {
		return Identity{}, fmt.Errorf("client id %q: bad pid namespace", s)
	}
	pid, err := strconv.Atoi(f[2])
	if err != nil || pid <= 0 || strconv.Itoa(pid) != f[2] {
		return Identity{}, fmt.Errorf("client id %q: bad pid", s)
	}
	st, err := strconv.ParseUint(f[3], 10, 64)
	if err != nil || strconv.FormatUint(st, 10) != f[3] {
		return Identity{}, fmt.Errorf("client id %q: bad start time", s)
	}
	return Identity{Host: f[0], PIDNS: ns, PID: pid, StartTime: st}, nil
}

// Self returns the identity of this process: its pid in its own PID namespace, its start time
// read through /proc/self (right even where /proc belongs to an outer namespace), its namespace.
func Self() (Identity, error) {
	host, err := os.Hostname()
	if err != nil {
		return Identity{}, fmt.Errorf("hostname: %w", err)
	}
	host = strings.ReplaceAll(host, "/", "_")
	ns, err := proctab.OwnPIDNamespace()
	if err != nil {
		return Identity{}, fmt.Errorf("worker identity: %w", err)
	}
	st, err := startTime()
	if err != nil {
		return Identity{}, err
	}
	return Identity{Host: host, PIDNS: ns, PID: os.Getpid(), StartTime: st}, nil
}

// Local reports whether /proc here can judge the process id names: it is of this host and of this
// process's PID namespace (self), and /proc is that namespace's view. A worker of another PID
// namespace on the same host (a container, `unshare --pid`) has pids that mean nothing here: it is
// judged by its heartbeat only.
func (id Identity) Local(self Identity) bool {
	return id.Host == self.Host && id.PIDNS == self.PIDNS && proctab.CheckOwnProc() == nil
}

// startTime reads field 22 of /proc/self/stat.
func startTime() (uint64, error) {
	p, err := proctab.OwnStat()
	if err != nil {
		return 0, fmt.Errorf("worker identity: %w", err)
	}
	return p.StartTime, nil
}

// Process states of a worker of this host, as /proc tells them.
const (
	ProcessRunning = "running" // alive and not stopped (running, sleeping, in I/O)
	ProcessStopped = "stopped" // alive but stopped: SIGSTOP, SIGTSTP, a debugger (stat state T or t)
	ProcessGone    = "gone"    // no such process, another process with the pid, or a zombie
)

// State says whether the process named by id still runs on this machine: a process with that pid
// exists, started at that time, is not a zombie, and whether it is stopped. It answers only for
// ids that are Local (the caller checks); an error means /proc could not say.
func (id Identity) State() (string, error) {
	p, err := proctab.Stat(id.PID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ProcessGone, nil
	case err != nil:
		return "", err
	case p.StartTime != id.StartTime || p.State == 'Z' || p.State == 'X' || p.State == 'x':
		return ProcessGone, nil
	case p.State == 'T' || p.State == 't':
		return ProcessStopped, nil
	}
	return ProcessRunning, nil
}

// Alive reports whether the process named by id still runs on this machine (stopped or not).
func (id Identity) Alive() (bool, error) {
	s, err := id.State()
	return s != ProcessGone, err
}
