package observe

import (
	"strings"
	"syscall"
	"time"

	"github.com/proxyline/proxyline/internal/proctab"
)

// Key is a process identity that survives PID reuse: (pid, starttime).
type Key = proctab.Key

// Attribution says why a process is counted as part of the run.
type Attribution string

// Ways a process is attributed to the run, strongest first.
const (
	ByCookie     Attribution = "cookie"     // its environment carries the run cookie
	ByCgroup     Attribution = "cgroup"     // it is in the run cgroup
	ByDescendant Attribution = "descendant" // its parent was attributed when it was first seen
	ByReparented Attribution = "reparented" // it was re-parented to the harness
	ByOwn        Attribution = "own"        // the runner started it and said so (Observer.Own)
)

// Process is what the observer knows of one attributed process. Values returned by the
// Observer are copies.
type Process struct {
	Key
	PPID      int   // last seen parent
	PPIDChain []int // parent chain at first sight, nearest first, up to PID 1 or the harness
	// Ancestors is the same chain with each ancestor's identity and command as seen then.
	Ancestors []Ancestor
	// Parent is the parent at first sight, by identity. It is zero for the runner's own
	// children (their parent is the harness) and for a process first seen already orphaned.
	Parent  Key
	PGID    int
	SID     int
	Comm    string
	Cmdline []string // last observed (the fork→exec window can show the parent's argv: re-read at 1 Hz)
	Cgroup  string   // cgroup v2 path at the last enrichment ("" when unknown)
	State   byte     // last seen state letter (R, S, D, Z, T, t, ...)
	// StateSince is when the process was first seen in its current State.
	StateSince time.Time
	Wchan      string    // at the last enrichment that read it in the current State: periodic ones read it only in states D, T and t, Refresh and Mark always
	wchanSince time.Time // StateSince when Wchan was read

	Attribution Attribution
	Cookie      bool // its environment carries the run cookie (whatever the attribution)
	InCgroup    bool // it was in the run cgroup at the last look
	Own         bool // one of the runner's own children (Observer.Own)
	// Reparented is true when the process was seen with the harness as parent without being one
	// of the runner's own children: an orphan of the system under test.
	Reparented   bool
	ReparentedAt time.Time // when Reparented was first seen

	FirstSeen time.Time
	LastSeen  time.Time
	// Exited is set once the process is no longer in the process table; ExitedAt is when that
	// was first noticed.
	Exited   bool
	ExitedAt time.Time
	// DiedAt is when it was first seen dead: in state Z, or gone from the table.
	DiedAt time.Time
	// ReapedByHarness is set when the observer reaped it (a re-parented orphan that exited).
	ReapedByHarness bool
	// Status is how it ended, when the harness reaped it (nil otherwise: its parent reaped it).
	Status *ExitStatus

	// AliveAt is the latest instant the process is known to have been alive (a sample that saw it
	// running, or a poll of its pidfd): it died after AliveAt. DeadBy is the earliest instant it is
	// known to have exited (its pidfd became readable, or a sample saw it a zombie or gone); zero
	// while it is not known to have exited. Both are bounds, never estimates.
	AliveAt time.Time
	DeadBy  time.Time
	// Orphaned is set when its parent (Parent) died while it was alive, or may have been: see
	// Orphaning for how long it is known to have run without its parent.
	Orphaned *Orphaning

	FDs     []proctab.FD // at the last enrichment, nil before the first
	RSSAnon int64        // bytes, at the last enrichment (VmRSS when RssAnon is absent)

	cmdComm string // Comm when Cmdline was last read
	fdErr   string // why the last fd read failed, "" if it did not
	life    *life  // exit watch: AliveAt and DeadBy
}

// Ancestor is one process of a parent chain, as seen when the chain was recorded.
type Ancestor struct {
	Key
	Comm    string
	Cmdline []string // empty when it could not be read
}

// Command is the ancestor's command line, or its [comm] when unknown.
func (a Ancestor) Command() string { return command(a.Cmdline, a.Comm) }

// ExitStatus is how a process ended: an exit code, or death by a signal.
type ExitStatus struct {
	Code   int            // exit code when Signal is 0
	Signal syscall.Signal // non-zero: killed by this signal
}

// Orphaning is the death of a process's parent while the process was alive. The parent died in
// [ParentAliveAt, ParentDeadBy]; the process was alive at Process.AliveAt and had exited by
// Process.DeadBy. So it ran without its parent for at least AliveAt − ParentDeadBy and at most
// DeadBy (or now) − ParentAliveAt: see Process.WithoutParent.
type Orphaning struct {
	Parent        Key
	ParentCommand string    // as seen when the parent was first seen
	ParentAliveAt time.Time // the parent was alive then: it died later
	ParentDeadBy  time.Time // the parent had exited by then
	// AtFirstSight is set when the process was first seen already re-parented (born and
	// orphaned between two samples): ParentAliveAt is then the process's own start.
	AtFirstSight bool
	// NewPPID is the parent it was re-parented to, when seen (0 before a sample saw it).
	NewPPID int
}

// WithoutParent returns bounds of how long p ran after its parent died: at least lo (which may
// be negative: not known to have outlived it at all) and at most hi (for a process still alive,
// up to now). It returns zeros when p was not orphaned.
func (p Process) WithoutParent(now time.Time) (lo, hi time.Duration) {
	if p.Orphaned == nil {
		return 0, 0
	}
	end := p.DeadBy
	if end.IsZero() {
		end = now
	}
	return p.AliveAt.Sub(p.Orphaned.ParentDeadBy), end.Sub(p.Orphaned.ParentAliveAt)
}

// Zombie is one stretch of time a process spent in state Z, not reaped by its parent.
type Zombie struct {
	Key
	Comm            string
	Cmdline         []string // as last seen alive
	Parent          Key      // the culprit: the parent that did not reap it
	ParentCmdline   []string
	ParentIsHarness bool
	Since           time.Time // first seen as a zombie
	Until           time.Time // last seen as a zombie (or now, while it lasts)
	Reaped          bool      // no longer in the table (reaped by its parent or by the harness)
	ReapedByHarness bool
}

// Usage is one sample of a process's resources.
type Usage struct {
	At      time.Time
	FDs     int   // number of open fds, -1 when unreadable
	RSSAnon int64 // bytes
}

// MarkProc is one attributed process at a phase mark.
type MarkProc struct {
	Key
	Comm    string
	Cmdline []string
	State   byte
	FDs     []proctab.FD // full fd list at the mark; nil when it could not be read
	FDErr   string       // why FDs is nil, if it is
	RSSAnon int64        // bytes at the mark
	// TroughRSSAnon is the minimum RssAnon seen between the previous mark and this one
	// (1 Hz samples plus both marks): the post-GC trough the memory detector fits.
	TroughRSSAnon int64
}

// Mark is a named phase boundary ("start", "cycle-2", "fault-3", "stopped", "end").
type Mark struct {
	Name  string
	At    time.Time
	Procs []MarkProc // attributed processes alive at the mark, by PID
}

// Sample is one 10 Hz tick summary.
type Sample struct {
	At         time.Time
	Attributed int // attributed processes alive (zombies included)
	Zombies    int // attributed or harness-parented zombies
}

// Timeline is everything the observer recorded, for charts and detectors. Memory is bounded:
// when a series reaches its cap, every other point is dropped and the sampling stride doubles.
type Timeline struct {
	Start   time.Time
	End     time.Time
	Samples []Sample        // 10 Hz summaries (decimated when long)
	Usage   map[Key][]Usage // 1 Hz per attributed process (decimated when long)
	Marks   []Mark
	Zombies []Zombie
}

// Capabilities says what the observer could set up on this machine. A detector whose
// evidence depends on a missing capability answers "unknown" with Reason.
type Capabilities struct {
	Subreaper      bool   // PR_SET_CHILD_SUBREAPER is set on the harness
	SubreaperError string // why not, when it is not
	Cgroup         bool   // Config.CgroupDir was given and is a cgroup v2 directory
	CgroupError    string
	// Pidfd is true when exits are watched through pidfds (precise exit times); otherwise the
	// observer knows exits from its samples only (PidfdError says why).
	Pidfd      bool
	PidfdError string
	// EnvironDenied counts processes that could be the system's (started after Start, not kernel
	// threads, and — when the harness is a subreaper — in the harness's tree or the run cgroup)
	// whose environment could not be read for lack of permission: they may carry the cookie
	// unseen. EnvironDeniedExample names one.
	EnvironDenied        int
	EnvironDeniedExample string
	// EnvironIgnored counts processes whose environment could not be read but that cannot be the
	// system's: the harness is a subreaper, so every process the system starts stays in the
	// harness's tree, and these were outside it (and outside the run cgroup).
	// EnvironIgnoredExample names one.
	EnvironIgnored        int
	EnvironIgnoredExample string
	// MaxSampleGap is the longest stretch, before the stop phase, in which the process table was
	// not read (sampling delayed by a busy machine), and MaxSampleGapAt when it began: a
	// process born and gone inside it was never seen.
	MaxSampleGap   time.Duration
	MaxSampleGapAt time.Time
}

// command joins a command line, or shows [comm] when there is none (kernel threads, zombies,
// unreadable).
func command(args []string, comm string) string {
	if len(args) == 0 {
		return "[" + comm + "]"
	}
	return strings.Join(args, " ")
}
