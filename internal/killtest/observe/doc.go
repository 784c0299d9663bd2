// Package observe watches the processes of a system under test from the outside, for killtest.
//
// An Observer makes the harness a child subreaper (so orphans of the system re-parent to it
// instead of PID 1), samples the whole process table at 10 Hz with internal/proctab, and
// attributes processes to the run:
//
//   - cookie: the process's environment contains the run cookie ("KILLTEST_RUN=<id>"); the
//     environment of each new (pid, starttime) is read once and the answer cached;
//   - cgroup: the process is in the run cgroup (Config.CgroupDir) or below it;
//   - descendant: its parent was attributed when it was first seen;
//   - reparented: it was seen with another parent, then re-parented to the harness, and is
//     not one of the runner's own children (Own). A child of the harness first seen as such
//     and without the cookie is taken for a harness helper (a probe) and not attributed.
//
// Attributed processes are enriched at 1 Hz (fds by class, RssAnon, wchan, cgroup, cmdline).
// Mark records a phase boundary with every attributed process's fds and memory at that point;
// the detectors (package detect) compare marks. Orphans re-parented to the harness that exit are
// reaped by a targeted waitid on their pid (never wait4(-1), which would steal the exit status of
// the runner's own exec.Cmd children) after being recorded.
//
// Shutdown order of Stop: cancel the sampling loop, wait for it, take a last sample and reap
// what re-parented to the harness and exited, then restore the subreaper flag if Start set it.
// Only one Observer per process should run at a time: the subreaper flag and re-parenting are
// process-wide.
package observe
