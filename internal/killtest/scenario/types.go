package scenario

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Scenario is one killtest scenario: the system to start, the workload, the faults and what must
// hold afterwards. Every string field may use ${VAR} references, expanded per run (see Instantiate).
type Scenario struct {
	// Name identifies the scenario in reports. Required; letters, digits, '-', '_', '.'.
	Name string `yaml:"name"`
	// Description is free text shown in reports.
	Description string `yaml:"description"`
	// Needs lists programs that must be found in PATH (after --bin); if one is missing the
	// scenario is UNKNOWN, never PASS.
	Needs []string `yaml:"needs"`
	// Vars are scenario variables, usable as ${NAME}. Built-ins: ${TMP} (a per-run temp dir),
	// ${SEED}, ${RUN} (the run id), ${SCENARIO_DIR} (directory of the scenario file; empty for
	// built-ins), ${PORT1}..${PORT4} (free loopback TCP ports picked for the run) and
	// ${TESTDATA} (set by the caller, may be empty).
	Vars map[string]string `yaml:"vars"`
	// Timeout bounds the whole run from start to teardown, setup included. Default 60s.
	Timeout Duration `yaml:"timeout"`
	// Setup steps run before each run (every one of --runs N), before the observer and the
	// components start: clearing Redis keys, creating a schema. They run without the run cookie
	// and outside the run cgroup, so their processes are never judged as the system's; a step
	// that fails or times out makes the run UNKNOWN (the harness could not prepare it).
	Setup []Step `yaml:"setup"`
	// Components are the long-running processes of the system, started in order; each waits for
	// the previous one to be ready.
	Components []Component `yaml:"components"`
	// Workload steps run in order once every component is ready.
	Workload Workload `yaml:"workload"`
	// Faults are injected while the workload runs.
	Faults []Fault `yaml:"faults"`
	// Probes are named measurements (command, SQL, Redis) used by Wait and Expect.
	Probes map[string]Probe `yaml:"probes"`
	// Wait lists conditions polled after the workload, before the components are stopped.
	Wait []Condition `yaml:"wait"`
	// Expect says which checks run and with which thresholds.
	Expect Expect `yaml:"expect"`

	// File is the file the scenario came from ("" for in-memory sources).
	File string `yaml:"-"`
	// lines maps a field path ("components[0].ready.timeout") to its line in File.
	lines map[string]int
	// root is the parsed document, kept to expand variables per run.
	root *yaml.Node
	// env lists the variables the scenario takes from killtest's environment, sorted.
	env []string
}

// Component is a long-running process of the system under test.
type Component struct {
	// Name identifies the component in faults, logs and reports. Required, unique.
	Name string `yaml:"name"`
	// Command is the argv to run; exactly one of Command and Sh is required.
	Command []string `yaml:"command"`
	// Sh is a shell command line run with "sh -c".
	Sh string `yaml:"sh"`
	// Env adds environment variables (KEY: value) to the harness environment.
	Env map[string]string `yaml:"env"`
	// Dir is the working directory. Default ${TMP}.
	Dir string `yaml:"dir"`
	// Ready says when the component is up. Default: as soon as it started.
	Ready Ready `yaml:"ready"`
	// Stop says how the component is stopped at the end of the scenario.
	Stop Stop `yaml:"stop"`
}

// Ready is a readiness condition; all the given ones must hold.
type Ready struct {
	// Log is a regular expression matched against each line of stdout/stderr.
	Log string `yaml:"log"`
	// TCP is host:port that must accept a connection (loopback only).
	TCP string `yaml:"tcp"`
	// File must exist.
	File string `yaml:"file"`
	// Delay is waited after the other conditions hold (for systems without a better signal).
	Delay Duration `yaml:"delay"`
	// Timeout bounds the wait. Default 10s.
	Timeout Duration `yaml:"timeout"`
}

// Stop is how a component is stopped at the end, and what its exit must be.
type Stop struct {
	// Signal sent to the component's main process. Default SIGTERM.
	Signal string `yaml:"signal"`
	// Group sends the signal to the component's whole process group instead of its main process.
	Group bool `yaml:"group"`
	// Deadline is how long the component may take to exit before SIGKILL. Default 5s.
	Deadline Duration `yaml:"deadline"`
	// Exit lists the accepted exit statuses: numbers, or signal names for "killed by". Default [0].
	Exit []string `yaml:"exit"`
}

// Workload is the list of steps, optionally repeated as cycles.
type Workload struct {
	// Steps run in order.
	Steps []Step `yaml:"steps"`
	// Cycles repeats the steps; each repetition ends with a "cycle-N" phase mark (the points the
	// fd and memory trends compare). Default 1.
	Cycles int `yaml:"cycles"`
}

// Step is one workload (or setup) command.
type Step struct {
	// Name labels the step. Default "step-N".
	Name string `yaml:"name"`
	// Command is the argv; exactly one of Command and Sh.
	Command []string `yaml:"command"`
	// Sh is a shell command line.
	Sh string `yaml:"sh"`
	// Env adds environment variables.
	Env map[string]string `yaml:"env"`
	// Dir is the working directory. Default ${TMP}.
	Dir string `yaml:"dir"`
	// Background starts the step and goes on; it is waited for (then killed) before the
	// components are stopped. Not allowed in setup.
	Background bool `yaml:"background"`
	// Timeout bounds the step. Default 30s.
	Timeout Duration `yaml:"timeout"`
	// Exit lists the accepted exit statuses. Default [0].
	Exit []string `yaml:"exit"`
}

// Fault is a signal sent to a target when a trigger fires, possibly repeatedly.
type Fault struct {
	// Name labels the fault in the timeline. Default "fault-N".
	Name string `yaml:"name"`
	// Signal: SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGSTOP, SIGCONT (with or without "SIG"). Required.
	Signal string `yaml:"signal"`
	// Target selects the processes that get the signal.
	Target Target `yaml:"target"`
	// When is the trigger.
	When When `yaml:"when"`
	// Repeat fires the fault this many times (each waits for its trigger again). Default 1.
	Repeat int `yaml:"repeat"`
	// Restart restarts the target component after each firing (once its main process exited),
	// waits for readiness, and marks a "cycle-N" phase.
	Restart bool `yaml:"restart"`
	// Required: if true (default) a fault that never fired makes the scenario UNKNOWN.
	Required *bool `yaml:"required"`
}

// Target selects processes. Component is required; the other fields narrow or widen it.
type Target struct {
	// Component whose main process is the target.
	Component string `yaml:"component"`
	// Tree targets the main process and all its attributed descendants.
	Tree bool `yaml:"tree"`
	// Match targets attributed processes whose command line matches this regex (descendants of
	// Component if given, else any attributed process).
	Match string `yaml:"match"`
	// Random picks one random (seeded) descendant of Component.
	Random bool `yaml:"random"`
}

// When is a fault trigger; exactly one of After, Process, Log, Window.
type When struct {
	// After fires this long after the workload started (or after the previous firing).
	After Duration `yaml:"after"`
	// Process fires when an attributed process whose command line matches this regex appears.
	Process string `yaml:"process"`
	// Log fires when a line of a component's output matches.
	Log *LogTrigger `yaml:"log"`
	// Window fires at a seeded random moment in [from, to] after the workload started.
	Window *Window `yaml:"window"`
	// Timeout: a trigger that has not fired by then is given up. Default: the scenario timeout.
	Timeout Duration `yaml:"timeout"`
}

// LogTrigger matches a line of a component's output.
type LogTrigger struct {
	Component string `yaml:"component"`
	Regex     string `yaml:"regex"`
}

// Window is a time range.
type Window struct {
	From Duration `yaml:"from"`
	To   Duration `yaml:"to"`
}

// Probe is a named measurement; exactly one kind.
type Probe struct {
	// Command runs a program and reads a number from its stdout.
	Command *CommandProbe `yaml:"command"`
	// SQL runs a count query.
	SQL *SQLProbe `yaml:"sql"`
	// Redis measures keys.
	Redis *RedisProbe `yaml:"redis"`
}

// CommandProbe runs argv (or sh) and reads a number: the whole stdout, or the JSON field at Path
// (dot-separated, numbers index arrays, e.g. "jobs.0.count").
type CommandProbe struct {
	Command []string `yaml:"command"`
	Sh      string   `yaml:"sh"`
	JSON    string   `yaml:"json"`
	// Timeout default 10s.
	Timeout Duration `yaml:"timeout"`
}

// SQLProbe runs a query returning one number. Driver: sqlite (DSN is a file path) or postgres
// (DSN is a pgx connection string).
type SQLProbe struct {
	Driver string `yaml:"driver"`
	DSN    string `yaml:"dsn"`
	Query  string `yaml:"query"`
}

// RedisProbe sums Op over Keys. Op: llen, hlen, zcard, scard. Addr default 127.0.0.1:6379.
type RedisProbe struct {
	Addr string   `yaml:"addr"`
	DB   int      `yaml:"db"`
	Op   string   `yaml:"op"`
	Keys []string `yaml:"keys"`
}

// Condition compares a probe value; at least one of Equals, AtMost, AtLeast.
type Condition struct {
	Probe   string   `yaml:"probe"`
	Equals  *float64 `yaml:"equals"`
	AtMost  *float64 `yaml:"at_most"`
	AtLeast *float64 `yaml:"at_least"`
	// Timeout (wait only) bounds the polling. Default 30s.
	Timeout Duration `yaml:"timeout"`
	// When (expect only): "before" (all components ready, before the workload) or "after"
	// (after the components stopped). Default after.
	When string `yaml:"when"`
}

// Holds reports whether v satisfies the condition.
func (c Condition) Holds(v float64) bool {
	if c.Equals != nil && v != *c.Equals {
		return false
	}
	if c.AtMost != nil && v > *c.AtMost {
		return false
	}
	if c.AtLeast != nil && v < *c.AtLeast {
		return false
	}
	return true
}

// String describes the condition ("jobs == 10").
func (c Condition) String() string {
	var parts []string
	if c.Equals != nil {
		parts = append(parts, fmt.Sprintf("== %g", *c.Equals))
	}
	if c.AtMost != nil {
		parts = append(parts, fmt.Sprintf("<= %g", *c.AtMost))
	}
	if c.AtLeast != nil {
		parts = append(parts, fmt.Sprintf(">= %g", *c.AtLeast))
	}
	return c.Probe + " " + strings.Join(parts, " and ")
}

// Expect selects the checks. The process checks orphans, zombies, stopped, ports and exit run by
// default (set `false` to disable); fd_growth and memory_growth run when given or when the
// scenario has cycles (workload cycles or restarting faults).
type Expect struct {
	Orphans      *OrphanCheck  `yaml:"orphans"`
	Zombies      *Toggle       `yaml:"zombies"`
	Stopped      *Toggle       `yaml:"stopped"`
	Ports        *PortCheck    `yaml:"ports"`
	Exit         *Toggle       `yaml:"exit"`
	FDGrowth     *FDCheck      `yaml:"fd_growth"`
	MemoryGrowth *MemoryCheck  `yaml:"memory_growth"`
	InheritedFDs *InheritCheck `yaml:"inherited_fds"`
	Files        *FilesCheck   `yaml:"files"`
	Probes       []Condition   `yaml:"probes"`
	History      *History      `yaml:"history"`
}

// Toggle is a check that is on unless `false` (or `{enabled: false}`).
type Toggle struct {
	Enabled bool `yaml:"enabled"`
}

// OrphanCheck: Grace is how long after the components stopped survivors are polled for before
// they count as orphans (it excuses only processes left at the end, never a process orphaned
// during the run). Default 2s.
type OrphanCheck struct {
	Enabled bool     `yaml:"enabled"`
	Grace   Duration `yaml:"grace"`
	// Allow lists regular expressions (unanchored, like target.match) of the command lines of
	// processes the system deliberately daemonizes while a component starts up (between its
	// start and its readiness): such a process is not an orphan. Anything else orphaned is.
	// The report names every process allowed this way. Default: none.
	Allow []string `yaml:"allow"`
}

// PortCheck: no attributed process may still listen after the stop, and Ports (loopback TCP
// ports the system used) must be bindable again.
type PortCheck struct {
	Enabled bool  `yaml:"enabled"`
	Ports   []int `yaml:"ports"`
}

// FDCheck thresholds (per long-lived process, fd count at each "cycle-N" mark). Defaults:
// Slope 0.5 fd/cycle, MinGrowth 3 (last − first), Warmup 2 cycles ignored, MinCycles 3 judged
// after warm-up (so at least 5 cycles are needed for a verdict).
type FDCheck struct {
	Enabled   bool    `yaml:"enabled"`
	Slope     float64 `yaml:"slope"`
	MinGrowth int     `yaml:"min_growth"`
	Warmup    int     `yaml:"warmup"`
	MinCycles int     `yaml:"min_cycles"`
}

// MemoryCheck thresholds (per long-lived process, RssAnon trough per cycle). Defaults:
// SlopeKiB 256 KiB/cycle, and the growth must also exceed max(MinGrowthPct 10 % of the first
// trough, MinGrowthMiB 16 MiB); Warmup 2 cycles, MinCycles 3.
type MemoryCheck struct {
	Enabled      bool    `yaml:"enabled"`
	SlopeKiB     float64 `yaml:"slope_kib"`
	MinGrowthMiB float64 `yaml:"min_growth_mib"`
	MinGrowthPct float64 `yaml:"min_growth_pct"`
	Warmup       int     `yaml:"warmup"`
	MinCycles    int     `yaml:"min_cycles"`
}

// InheritCheck: checker processes (attributed processes whose command line contains one of
// Commands) must hold no pipe or socket inherited from another attributed process (an fd
// without O_CLOEXEC). Runs only when given, with at least one command.
type InheritCheck struct {
	Enabled  bool     `yaml:"enabled"`
	Commands []string `yaml:"commands"`
}

// FilesCheck: files and directories created during the run and still there after the stop
// (leaked temporary files, such as the temp dir of a task SIGKILLed in its middle). The trees of
// Dirs are recorded after Setup, before the components start, and compared after the stop.
// Runs only when given (`files: true` for the defaults).
type FilesCheck struct {
	Enabled bool `yaml:"enabled"`
	// Dirs are the directories watched (a relative path is relative to ${TMP}). Default
	// [${TMP}], which holds ${TMP}/tmp, the TMPDIR of every process of the system. killtest's
	// own files there (logs/) are always ignored. A directory that exists neither before the run
	// nor after the stop makes the check unknown (a typo must not pass silently).
	Dirs []string `yaml:"dirs"`
	// Ignore lists globs (path.Match syntax) of paths that may stay: a pattern with a '/' is
	// matched against the path relative to its dir, one without against each name in it (as
	// in .gitignore); a match on a directory covers everything below it. Files the scenario
	// itself names as outputs (history sources, checksums, SQLite probe files and their
	// -wal/-shm/-journal, ready files) are ignored too.
	Ignore []string `yaml:"ignore"`
}

// History is the Jepsen total-queue check: what was submitted against what completed.
type History struct {
	// Submitted ids: one source.
	Submitted Source `yaml:"submitted"`
	// Results: one source; each row an id and optionally an output.
	Results Source `yaml:"results"`
	// Checksums is an optional file of "id checksum" lines (sha256 hex of the output); a result
	// whose output hashes differently is corrupted.
	Checksums string `yaml:"checksums"`
	// MaxLost, MaxDuplicated, MaxUnexpected, MaxCorrupted are allowed counts. Default 0.
	MaxLost       int `yaml:"max_lost"`
	MaxDuplicated int `yaml:"max_duplicated"`
	MaxUnexpected int `yaml:"max_unexpected"`
	MaxCorrupted  int `yaml:"max_corrupted"`
}

// Source is where ids (and outputs) come from; exactly one of File, JSONL, SQL.
type Source struct {
	// File has one id per line (blank lines and # comments ignored).
	File string `yaml:"file"`
	// JSONL is a JSON lines file; IDField (default "id") and OutputField (default "output") name
	// the fields (dot paths allowed).
	JSONL       string `yaml:"jsonl"`
	IDField     string `yaml:"id_field"`
	OutputField string `yaml:"output_field"`
	// SQL runs a query whose rows are (id) or (id, output).
	SQL *SQLProbe `yaml:"sql"`
}

// Duration is a time.Duration written as "2s", "150ms".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration like 2s, got a %s", kindName(n.Kind))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("want a duration like 2s: %w", err)
	}
	if v < 0 {
		return fmt.Errorf("duration %s is negative", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }
