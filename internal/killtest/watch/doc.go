// Package watch is killtest watch: it watches a deployed system (one it did not start) for what
// killtest proves absent in a test run, with killtest's probes and evidence: orphans (by cookie,
// by cgroup, or by parent rules), fd and memory growth of named processes, and queue probes. A
// watch file (File, read like a scenario) says what belongs to the system and what to watch.
//
// A Watcher scans: Scan reads the process table once (through internal/proctab), keeps the
// samples and orphan candidates across scans, and returns a Report of findings and of what could
// not be judged. Once scans until every orphan candidate is judged (for cron and systemd
// timers); Service scans at an interval, serves /metrics (its own registry, internal/serve's
// listening rule) and runs an alert command once per new finding. State saves what a watch knows
// between two runs of `killtest watch --once` (samples, alerts sent).
//
// Definitions (docs/operate.md has the operator's view):
//   - orphan: a process of the system whose parent rule no longer holds: for a process that
//     belongs by cookie or cgroup, its parent does not belong to the system (it was re-parented
//     to PID 1 or a subreaper) and it is not a root; for a process a rule matches, its parent's
//     command line does not match the rule's. A finding once it stayed so for Orphans.After,
//     with the same identity (pid, start time).
//   - fd or memory growth: over the window, the Theil–Sen trend of the samples and the change
//     from the first to the last sample both reach the threshold.
//   - limit: a probe's value breaks a condition of the file's limits.
package watch
