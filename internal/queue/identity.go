package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// Identity names a worker process so that it can be recognised as dead without confusing it with
// a later process that got the same pid: host, pid and the process start time (field 22 of
// /proc/<pid>/stat, clock ticks since boot). Its String form is the River client ID,
// "<host>/<pid>/<starttime>", which River records in each job's attempted_by.
type Identity struct {
	Host      string
	PID       int
	StartTime uint64
}

func (id Identity) String() string {
	return id.Host + "/" + strconv.Itoa(id.PID) + "/" + strconv.FormatUint(id.StartTime, 10)
}

// ParseIdentity parses a client ID written by String. Client IDs of other programs do not parse.
func ParseIdentity(s string) (Identity, error) {
	// The host may not contain '/', so split from the right.
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return Identity{}, fmt.Errorf("client id %q: not host/pid/starttime", s)
	}
	j := strings.LastIndexByte(s[:i], '/')
	if j <= 0 {
		return Identity{}, fmt.Errorf("client id %q: not host/pid/starttime", s)
	}
	pid, err := strconv.Atoi(s[j+1 : i])
	if err != nil || pid <= 0 {
		return Identity{}, fmt.Errorf("client id %q: bad pid", s)
	}
	st, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return Identity{}, fmt.Errorf("client id %q: bad start time", s)
	}
	return Identity{Host: s[:j], PID: pid, StartTime: st}, nil
}

// Self returns the identity of this process.
func Self() (Identity, error) {
	host, err := os.Hostname()
	if err != nil {
		return Identity{}, fmt.Errorf("hostname: %w", err)
	}
	host = strings.ReplaceAll(host, "/", "_")
	pid := os.Getpid()
	st, err := startTime(pid)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Host: host, PID: pid, StartTime: st}, nil
}

// startTime reads field 22 of /proc/<pid>/stat.
func startTime(pid int) (uint64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, fmt.Errorf("open /proc/%d: %w", pid, err)
	}
	s, err := p.Stat()
	if err != nil {
		return 0, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	return s.Starttime, nil
}

// Alive reports whether the process named by id still runs on this machine: a process with that
// pid exists, started at that time, and is not a zombie. It answers only for ids of this host
// (the caller checks); an error means /proc could not say.
func (id Identity) Alive() (bool, error) {
	p, err := procfs.NewProc(id.PID)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("open /proc/%d: %w", id.PID, err)
	}
	s, err := p.Stat()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // exited between the two reads
		}
		return false, fmt.Errorf("read /proc/%d/stat: %w", id.PID, err)
	}
	return s.Starttime == id.StartTime && s.State != "Z" && s.State != "X", nil
}
