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

	"github.com/proxyline/proxyline/internal/proctab"
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
	// TempDir is where task directories (MkdirTask) are looked for. Default os.TempDir().
	TempDir string
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
	Owner     string    `json:"owner"` // <pidns>:<pid>:<starttime> of the supervisor
	Cgroup    string    `json:"cgroup"`
	// Action is "would stop", "stopped", "gone", "failed: ...", or "skipped: ..." for a process
	// whose owner cannot be judged from here (another PID namespace): never touched.
	Action string `json:"action"`
}

// StaleCgroup is a supervisor cgroup whose owner is dead (or cannot be judged: skipped).
type StaleCgroup struct {
	Path  string `json:"path"`
	Owner string `json:"owner"` // <pidns>:<pid>:<starttime> of the supervisor
	Procs []int  `json:"procs"`
	// Action is "would remove", "removed", "failed: ...", or "skipped: ..." (never touched).
	Action string `json:"action"`
}

// SweepReport is what Sweep found and did.
type SweepReport struct {
	Processes []Leftover    `json:"processes"`
	Cgroups   []StaleCgroup `json:"cgroups"`
	Dirs      []StaleDir    `json:"dirs"`
	// Failed counts leftovers that could not be stopped or removed.
	Failed int `json:"failed"`
}

// Found counts the leftovers found (processes, cgroups, task directories), not counting
// entries that were skipped (not ours, or owned by a supervisor this sweep cannot judge).
func (r SweepReport) Found() int {
	p, c, d := r.Counts()
	return p + c + d
}

// Counts counts the leftovers found of each kind, not counting skipped entries.
func (r SweepReport) Counts() (processes, cgroups, dirs int) {
	for _, p := range r.Processes {
		if !skipped(p.Action) {
			processes++
		}
	}
	for _, c := range r.Cgroups {
		if !skipped(c.Action) {
			cgroups++
		}
	}
	for _, d := range r.Dirs {
		if !skipped(d.Action) {
			dirs++
		}
	}
	return processes, cgroups, dirs
}

// Skipped counts the entries left alone ("skipped: ...").
func (r SweepReport) Skipped() int {
	return len(r.Processes) + len(r.Cgroups) + len(r.Dirs) - r.Found()
}

func skipped(action string) bool { return strings.HasPrefix(action, "skipped") }

// Sweep finds processes whose task cookie names a dead owner, cgroups of dead supervisors and
// their task directories (MkdirTask), and (unless DryRun) stops or removes them: SIGTERM+SIGCONT,
// grace, SIGKILL, each signal sent through a pidfd after re-checking the process's start time and
// cookie; cgroup.kill and rmdir; removal of the directory without following any symbolic link.
// An owner in the sweep's own PID namespace is dead when no process has its pid with its start
// time; one in another namespace is skipped (reported, never touched) unless the sweep runs in
// the initial PID namespace and no process is left in the owner's (see ownerJudge). Processes
// without a cookie are never touched, nor is the calling process; nor is anything in TempDir but
// real directories of ours named exactly as MkdirTask names them.
//
// The sweep refuses to judge anything (an error wrapping proctab.ErrForeignProc) when /proc is
// not its own namespace's view: the pids there are not the ones owners recorded.
func Sweep(ctx context.Context, cfg SweepConfig) (SweepReport, error) {
	var rep SweepReport
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := proctab.CheckOwnProc(); err != nil {
		return rep, fmt.Errorf("sweep refused: %w", err)
	}
	ns, err := proctab.OwnPIDNamespace()
	if err != nil {
		return rep, fmt.Errorf("sweep refused: %w", err)
	}
	j := newOwnerJudge(ns)
	found, err := findLeftovers(cfg, j)
	if err != nil {
		return rep, err
	}
	rep.Processes = found.list
	if len(found.members) > 0 {
		stopMembers(ctx, found.members, cmp.Or(cfg.Grace, defaultGrace))
		rep.Failed += found.record(log)
	}

	cgroups, cgFailed, cgErr := sweepCgroups(cfg, j, log)
	dirs, dirFailed, dirErr := sweepTaskDirs(cfg, j)
	for _, d := range dirs {
		if d.Action != "would remove" && !skipped(d.Action) {
			log.Warn("sweep: task directory of a dead supervisor", "path", d.Path, "owner", d.Owner, "bytes", d.Bytes, "action", d.Action)
		}
	}
	rep.Cgroups, rep.Dirs = cgroups, dirs
	rep.Failed += cgFailed + dirFailed
	sort.Slice(rep.Processes, func(i, j int) bool { return rep.Processes[i].PID < rep.Processes[j].PID })
	var failErr error
	if rep.Failed > 0 {
		failErr = fmt.Errorf("sweep: %d leftovers could not be stopped or removed", rep.Failed)
	}
	return rep, errors.Join(cgErr, dirErr, failErr)
}

// leftovers is what findLeftovers found: the processes, and (unless DryRun) those verified
// through a pidfd to be stopped.
type leftovers struct {
	list    []Leftover
	members []member
	idx     []int // index in list of each member
}

// findLeftovers lists the processes other than us whose cookie names a dead owner (of cfg.Owner
// and cfg.Name, when set), and those whose owner cannot be judged (skipped). Unless DryRun, it
// opens a pidfd to each dead owner's process and re-verifies its start time and cookie through
// /proc right after (HYGIENE trap 1); one that changed is marked "gone".
func findLeftovers(cfg SweepConfig, j *ownerJudge) (leftovers, error) {
	var found leftovers
	pids, err := proctab.PIDs()
	if err != nil {
		return found, err
	}
	boot, self := bootTime(), os.Getpid()
	for _, pid := range pids {
		if pid == self {
			continue
		}
		raw := procCookie(pid)
		if raw == "" {
			continue
		}
		c, err := ParseCookie(raw)
		if err != nil || (cfg.Owner != 0 && c.OwnerPID != cfg.Owner) || !cfg.nameMatches(c.TaskID) {
			continue
		}
		v := j.judge(c.owner())
		if !v.dead && v.skip == "" {
			continue
		}
		lo, ok := leftoverOf(pid, raw, c, boot)
		if !ok {
			continue
		}
		if v.skip != "" {
			lo.Action = v.skip
		} else if !cfg.DryRun {
			m, err := openMember(pid, lo.StartTime, func(pid int) bool { return procCookie(pid) == raw })
			if err != nil {
				lo.Action = "gone"
			} else {
				found.members = append(found.members, m)
				found.idx = append(found.idx, len(found.list))
			}
		}
		found.list = append(found.list, lo)
	}
	return found, nil
}

// leftoverOf describes process p, whose cookie raw names the dead owner of c. It is false when p
// ended meanwhile.
func leftoverOf(pid int, raw string, c Cookie, boot time.Time) (Leftover, bool) {
	st, err := readProc(pid)
	if err != nil {
		return Leftover{}, false
	}
	cmdline, _ := proctab.Cmdline(pid)
	cg, _ := proctab.Cgroup(pid)
	lo := Leftover{
		PID: pid, PPID: st.ppid, StartTime: st.start, State: st.state, Cmdline: cmdline,
		Cookie: raw, Owner: c.Owner(), Cgroup: cg, Action: "would stop",
	}
	if !boot.IsZero() {
		lo.Started = boot.Add(time.Duration(st.start) * time.Second / userHZ)
		lo.Age = time.Since(lo.Started).Round(time.Second).String()
	}
	return lo, true
}

// stopMembers sends SIGTERM and SIGCONT to every member, gives them the grace period, then
// SIGKILLs those left and waits for them up to killWait (or until ctx ends).
func stopMembers(ctx context.Context, members []member, grace time.Duration) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGCONT} {
		for _, m := range members {
			_ = m.signal(sig)
		}
	}
	if waitMembers(ctx, members, time.Now().Add(grace)) {
		return
	}
	for _, m := range members {
		if !m.exited() {
			_ = m.signal(syscall.SIGKILL)
		}
	}
	waitMembers(ctx, members, time.Now().Add(killWait))
}

// record sets the action of every stopped member ("stopped", or "failed: ..."), reaps and closes
// it, logs it, and returns how many could not be stopped.
func (f leftovers) record(log *slog.Logger) (failed int) {
	for i, m := range f.members {
		lo := &f.list[f.idx[i]]
		if m.exited() {
			lo.Action = "stopped"
			m.reap()
		} else {
			lo.Action = "failed: still alive after SIGKILL"
			failed++
		}
		m.close()
		log.Warn("sweep: leftover task process", "pid", lo.PID, "owner", lo.Owner, "cmdline", strings.Join(lo.Cmdline, " "), "action", lo.Action)
	}
	return failed
}

// sweepCgroups finds the cgroup directories of dead supervisors and (unless DryRun) kills what
// is in them and removes them. Those of owners it cannot judge are listed as skipped.
func sweepCgroups(cfg SweepConfig, j *ownerJudge, log *slog.Logger) ([]StaleCgroup, int, error) {
	parent := cfg.CgroupParent
	if parent == "" {
		parent, _ = DefaultCgroupParent()
	}
	if parent == "" {
		return nil, 0, nil
	}
	entries, err := os.ReadDir(parent)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("read cgroup parent %s: %w", parent, err)
	}
	var out []StaleCgroup
	failed := 0
	for _, e := range entries {
		inst, o, ok := parseOwnerDir(e.Name())
		if !e.IsDir() || !ok || (cfg.Owner != 0 && o.pid != cfg.Owner) || !cfg.nameMatches(inst) {
			continue
		}
		v := j.judge(o)
		if !v.dead && v.skip == "" {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		sc := StaleCgroup{Path: dir, Owner: o.String(), Action: "would remove"}
		sc.Procs = treeProcs(dir)
		if v.skip != "" {
			sc.Action = v.skip
		} else if !cfg.DryRun {
			if err := cgroupKillRemove(dir, killWait); err != nil {
				sc.Action = "failed: " + err.Error()
				failed++
			} else {
				sc.Action = "removed"
			}
			log.Warn("sweep: stale task cgroup", "path", dir, "owner", sc.Owner, "procs", sc.Procs, "action", sc.Action)
		}
		out = append(out, sc)
	}
	return out, failed, nil
}

// userHZ is the clock tick of stat field 22; 100 on every Linux we run on (procfs assumes it too).
const userHZ = 100

// bootTime is the machine's boot time, zero when /proc/stat cannot tell.
func bootTime() time.Time {
	t, err := proctab.BootTime()
	if err != nil {
		return time.Time{}
	}
	return t
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
