package observe

import (
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
	PGID      int
	SID       int
	Comm      string
	Cmdline   []string // last observed (the fork→exec window can show the parent's argv: re-read at 1 Hz)
	Cgroup    string   // cgroup v2 path at the last enrichment ("" when unknown)
	State     byte     // last seen state letter (R, S, D, Z, T, t, ...)
	// StateSince is when the process was first seen in its current State.
	StateSince time.Time
	Wchan      string // at the last enrichment: periodic ones read it only in states D, T and t, Refresh and Mark always

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

	FDs     []proctab.FD // at the last enrichment, nil before the first
	RSSAnon int64        // bytes, at the last enrichment (VmRSS when RssAnon is absent)

	cmdComm string // Comm when Cmdline was last read
	fdErr   string // why the last fd read failed, "" if it did not
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
	// EnvironDenied counts processes started after Start whose environment could not be read
	// for lack of permission (they may carry the cookie unseen); EnvironDeniedExample names one.
	EnvironDenied        int
	EnvironDeniedExample string
}
