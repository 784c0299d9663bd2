// Package proctab is a fast, read-only view of the Linux process table in /proc: a cheap
// snapshot of every process's stat line for 10 Hz sampling (Reader.Snapshot), and slower
// enrichers for one process (command line, environment, file descriptors, cgroup, wchan,
// anonymous RSS) and for the machine's listening TCP sockets; and the one place that maps cgroup
// v2 names to directories (CgroupDir, OwnCgroupDir, CgroupOfDir), honouring each cgroup2 mount's
// root (bind mounts, cgroup namespaces).
//
// A process's identity is the pair (PID, StartTime): PIDs are reused, start times (stat field
// 22, in clock ticks since boot) make the pair unique. Callers must compare both before acting
// on a process they saw earlier.
//
// The hot path (Snapshot, ParseStat) is hand-written over raw syscalls with reused buffers
// because it runs ten times a second over hundreds of processes; everything else uses
// github.com/prometheus/procfs or the standard library.
package proctab
