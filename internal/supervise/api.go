package supervise

import (
	"io"
	"log/slog"
	"time"
)

// Layers says which protection layers are in force (from Detect or Supervisor.Layers), or which
// to switch off (Config.Disable).
type Layers struct {
	ProcessGroup bool `json:"process_group"` // own process group, group kill on cancel
	Pdeathsig    bool `json:"pdeathsig"`     // SIGKILL to the task (or its init) when the worker dies
	Cgroup       bool `json:"cgroup"`        // one cgroup v2 per task, cgroup.kill
	PIDNamespace bool `json:"pid_namespace"` // one PID namespace per task with a tiny init
	Subreaper    bool `json:"subreaper"`     // the worker adopts and reaps its tasks' orphans
	Cookie       bool `json:"cookie"`        // kill leftovers found by their environment cookie
}

// Config configures a Supervisor. The zero value is ready to use.
type Config struct {
	// Name names the owner in cookies, cgroup directories and logs, e.g. "worker-3". Characters
	// other than [A-Za-z0-9_-] are replaced by '_'. Default "proxyline".
	Name string
	// CgroupParent is the cgroup v2 directory under which the supervisor creates its own
	// directory <name>.<pid>.<starttime>, holding one leaf per task. Default: detected, the
	// directory "proxyline" under our own cgroup (or under its parent when our own cgroup is a
	// leaf named "supervisor", so the worker and its tasks are siblings), if writable.
	CgroupParent string
	// Disable switches layers off even where the machine allows them (tests, and machines
	// where one misbehaves). The zero value disables nothing.
	Disable Layers
	// Grace is the time between SIGTERM and SIGKILL. Default 2 s.
	Grace time.Duration
	// Log receives what the supervisor does. Default: discard.
	Log *slog.Logger
	// TempDir is where MkdirTask creates task directories by default, and where the start-up
	// sweep looks for those of dead supervisors. Default os.TempDir() ($TMPDIR, else /tmp).
	TempDir string
	// SkipStartSweep leaves leftovers of dead supervisors alone at Start (tests that watch
	// leftovers; hosts where `proxyline cleanup` runs on its own schedule). Default false: Start
	// sweeps.
	SkipStartSweep bool
}

// Spec describes one task.
type Spec struct {
	// Path is the program to run; a name without a slash is looked up in PATH.
	Path string
	// Args are the arguments, without the program name.
	Args []string
	// Dir is the working directory. Default: the worker's.
	Dir string
	// Env is the environment. Default: the worker's. The cookie is always added.
	Env []string
	// Stdout and Stderr receive the output, each up to OutputLimit bytes; more is read and
	// dropped (Result.Truncated). Nil discards. With PTY, both streams arrive on Stdout.
	Stdout, Stderr io.Writer
	// OutputLimit caps what is kept of each stream. Default 1 MiB.
	OutputLimit int64
	// PTY gives the command a pseudo-terminal as stdin, stdout and stderr, for tools that insist
	// on a terminal (so `script` is never needed). Without PTY, stdin is /dev/null.
	PTY bool
	// Timeout bounds the run; 0 means no limit other than the context.
	Timeout time.Duration
	// TaskDir, if set, is a directory this supervisor made for the task with MkdirTask. With the
	// PID namespace layer the task's init removes it should the supervisor die (even by
	// SIGKILL) while the task runs; otherwise the next sweep does. The caller still removes it
	// when Run returns. Run refuses (ErrStart) a directory not named as this supervisor's.
	TaskDir string
	// Started, if set, is called once the task runs, with the pid of the process the supervisor
	// started: the command itself, or the task's init when a PID namespace is in force.
	Started func(pid int)
}

// Result is what became of a task.
type Result struct {
	// ExitCode is the command's exit status, or -1 when a signal ended it.
	ExitCode int
	// Signaled says a signal ended the command; Signal names it.
	Signaled bool
	Signal   string
	// TimedOut says Spec.Timeout expired and the task was killed.
	TimedOut bool
	// Escaped lists pids of the task's processes still alive after its main process ended (or
	// after the process group was killed): daemonized or setsid'd descendants. They were killed
	// when a layer allowed it; otherwise they are reported here and in the log, never hidden.
	Escaped []int
	// Truncated says some output beyond Spec.OutputLimit was dropped.
	Truncated bool
	// Duration is the wall time from start to the end of cleanup.
	Duration time.Duration
	// TaskID is the task's id in its cookie.
	TaskID string
}

// CookieEnv is the environment variable that tags every task process.
const CookieEnv = "PROXYLINE_TASK_COOKIE"
