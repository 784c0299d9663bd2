package supervise

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// SweepConfig configures Sweep. The zero value sweeps for real with the defaults.
type SweepConfig struct {
	// DryRun lists leftovers without touching them.
	DryRun bool
	// CgroupParent is where supervisors create their cgroups. Default: DefaultCgroupParent.
	CgroupParent string
	// Grace is the time between SIGTERM and SIGKILL. Default 2 s.
	Grace time.Duration
	// Log receives what the sweep does. Default: discard.
	Log *slog.Logger
	// Owner, when not 0, restricts the sweep to leftovers of the (dead) supervisor with this pid.
	Owner int
	// Name, when not empty, restricts the sweep to leftovers of supervisors of that Config.Name:
	// a starting worker cleans up after dead workers, not after every other program's tasks
	// (`proxyline cleanup` sweeps them all).
	Name string
}

// Leftover is a process that carries a task cookie whose owner is dead.
type Leftover struct {
	PID       int       `json:"pid"`
	PPID      int       `json:"ppid"`
	StartTime uint64    `json:"start_ticks"` // stat field 22
	Started   time.Time `json:"started"`
	Age       string    `json:"age"`
	State     string    `json:"state"`
	Cmdline   []string  `json:"cmdline"`
	Cookie    string    `json:"cookie"`
	Owner     string    `json:"owner"` // <pid>:<starttime> of the dead supervisor
	Cgroup    string    `json:"cgroup"`
	Action    string    `json:"action"` // "would stop", "stopped", "gone", or "failed: ..."
}

// StaleCgroup is a supervisor cgroup whose owner is dead.
type StaleCgroup struct {
	Path   string `json:"path"`
	Owner  string `json:"owner"`
	Procs  []int  `json:"procs"`
	Action string `json:"action"` // "would remove", "removed" or "failed: ..."
}

// SweepReport is what Sweep found and did.
type SweepReport struct {
	Processes []Leftover    `json:"processes"`
	Cgroups   []StaleCgroup `json:"cgroups"`
	// Failed counts leftovers that could not be stopped or removed.
	Failed int `json:"failed"`
}

// Sweep finds processes whose task cookie names a dead owner, and cgroups of dead supervisors,
// and (unless DryRun) stops them: SIGTERM+SIGCONT, grace, SIGKILL, each signal sent through a
// pidfd after re-checking the process's start time and cookie. An owner is dead when no
// process has its pid with its start time. Processes without a cookie are never touched, nor
// is the calling process.
func Sweep(ctx context.Context, cfg SweepConfig) (SweepReport, error) {
	var rep SweepReport
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	grace := cmp.Or(cfg.Grace, defaultGrace)
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return rep, fmt.Errorf("open /proc: %w", err)
	}
	boot := bootTime(fs)
	procs, err := fs.AllProcs()
	if err != nil {
		return rep, fmt.Errorf("list processes: %w", err)
	}
	ownerAlive := map[string]bool{}
	isAlive := func(pid int, start uint64) bool {
		key := fmt.Sprintf("%d:%d", pid, start)
		a, ok := ownerAlive[key]
		if !ok {
			a = alive(fs, pid, start)
			ownerAlive[key] = a
		}
		return a
	}
	self := os.Getpid()
	var members []member
	var idx []int // index in rep.Processes of each member
	for _, p := range procs {
		if p.PID == self {
			continue
		}
		raw := procCookie(fs, p.PID)
		if raw == "" {
			continue
		}
		c, err := ParseCookie(raw)
		if err != nil || (cfg.Owner != 0 && c.OwnerPID != cfg.Owner) || !cfg.nameMatches(c.TaskID) || isAlive(c.OwnerPID, c.OwnerStart) {
			continue
		}
		st, err := p.Stat()
		if err != nil {
			continue
		}
		cmdline, _ := p.CmdLine()
		lo := Leftover{
			PID: p.PID, PPID: st.PPID, StartTime: st.Starttime, State: st.State, Cmdline: cmdline,
			Cookie: raw, Owner: c.Owner(), Cgroup: procCgroup2(p.PID), Action: "would stop",
		}
		if !boot.IsZero() {
			lo.Started = boot.Add(time.Duration(st.Starttime) * time.Second / userHZ)
			lo.Age = time.Since(lo.Started).Round(time.Second).String()
		}
		if !cfg.DryRun {
			// Re-verify the cookie and start time through a pidfd right before acting (trap 1).
			m, err := openMember(fs, p.PID, st.Starttime, func(pid int) bool { return procCookie(fs, pid) == raw })
			if err != nil {
				lo.Action = "gone"
			} else {
				members = append(members, m)
				idx = append(idx, len(rep.Processes))
			}
		}
		rep.Processes = append(rep.Processes, lo)
	}
	if len(members) > 0 {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGCONT} {
			for _, m := range members {
				_ = m.signal(sig)
			}
		}
		if !waitMembers(ctx, members, time.Now().Add(grace)) {
			for _, m := range members {
				if !m.exited() {
					_ = m.signal(syscall.SIGKILL)
				}
			}
			waitMembers(ctx, members, time.Now().Add(killWait))
		}
		for i, m := range members {
			lo := &rep.Processes[idx[i]]
			if m.exited() {
				lo.Action = "stopped"
				m.reap()
			} else {
				lo.Action = "failed: still alive after SIGKILL"
				rep.Failed++
			}
			m.close()
			log.Warn("sweep: leftover task process", "pid", lo.PID, "owner", lo.Owner, "cmdline", strings.Join(lo.Cmdline, " "), "action", lo.Action)
		}
	}

	parent := cfg.CgroupParent
	if parent == "" {
		parent, _ = DefaultCgroupParent()
	}
	if parent != "" {
		entries, err := os.ReadDir(parent)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return rep, fmt.Errorf("read cgroup parent %s: %w", parent, err)
		}
		for _, e := range entries {
			pid, start, ok := parseOwnerDir(e.Name())
			if !e.IsDir() || !ok || (cfg.Owner != 0 && pid != cfg.Owner) || !cfg.nameMatches(e.Name()) || isAlive(pid, start) {
				continue
			}
			dir := filepath.Join(parent, e.Name())
			sc := StaleCgroup{Path: dir, Owner: fmt.Sprintf("%d:%d", pid, start), Action: "would remove"}
			sc.Procs = treeProcs(dir)
			if !cfg.DryRun {
				if err := cgroupKillRemove(dir, killWait); err != nil {
					sc.Action = "failed: " + err.Error()
					rep.Failed++
				} else {
					sc.Action = "removed"
				}
				log.Warn("sweep: stale task cgroup", "path", dir, "owner", sc.Owner, "procs", sc.Procs, "action", sc.Action)
			}
			rep.Cgroups = append(rep.Cgroups, sc)
		}
	}
	sort.Slice(rep.Processes, func(i, j int) bool { return rep.Processes[i].PID < rep.Processes[j].PID })
	if rep.Failed > 0 {
		return rep, fmt.Errorf("sweep: %d leftovers could not be stopped", rep.Failed)
	}
	return rep, nil
}

// userHZ is the clock tick of stat field 22; 100 on every Linux we run on (procfs assumes it too).
const userHZ = 100

func bootTime(fs procfs.FS) time.Time {
	st, err := fs.Stat()
	if err != nil {
		return time.Time{}
	}
	return time.Unix(int64(st.BootTime), 0)
}

// treeProcs lists the pids in a cgroup and its descendants.
func treeProcs(dir string) []int {
	pids := []int{}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			ps, _ := cgroupProcs(p)
			pids = append(pids, ps...)
		}
		return nil
	})
	return pids
}

// waitMembers polls until every member has exited, the deadline passes or ctx ends.
func waitMembers(ctx context.Context, members []member, deadline time.Time) bool {
	for {
		all := true
		for _, m := range members {
			if !m.exited() {
				all = false
				break
			}
		}
		if all {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// nameMatches reports whether a task id ("<name>-<instance>-<seq>") or an owner cgroup directory
// ("<name>-<instance>.<pid>.<start>") belongs to a supervisor named cfg.Name (any, when empty).
func (cfg SweepConfig) nameMatches(idOrDir string) bool {
	if cfg.Name == "" {
		return true
	}
	name := sanitizeName(cfg.Name)
	if rest, ok := strings.CutPrefix(idOrDir, name+"-"); ok {
		// The instance suffix is 6 hex digits (see New): "worker-x-..." is not a "worker".
		inst, _, _ := strings.Cut(rest, ".")
		inst, _, _ = strings.Cut(inst, "-")
		return len(inst) == 6 && strings.Trim(inst, "0123456789abcdef") == ""
	}
	return false
}
