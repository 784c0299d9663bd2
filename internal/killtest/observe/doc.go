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
// Every attributed process and the parent of every attributed process is also watched through a
// pidfd in one epoll set serviced by one goroutine, so exits are known within its wake-up
// latency; the parent is recorded by identity when a process is first seen, and when it dies
// while its child lives the child gets an Orphaning with bounds (never estimates) of when the
// parent died, and a liveness poll OrphanBound later says whether it outlived it by more (see
// Process.WithoutParent and docs/killtest-detectors.md, "Timing"). BeginStop marks the start of
// the stop phase after recording every exit already signalled.
//
// Attributed processes are enriched at 1 Hz (fds by class, RssAnon, wchan, cgroup, cmdline).
// Mark records a phase boundary with every attributed process's fds and memory at that point;
// the detectors (package detect) compare marks. Orphans re-parented to the harness that exit are
// reaped by a targeted waitid on their pid (never wait4(-1), which would steal the exit status of
// the runner's own exec.Cmd children) after being recorded.
//
// Shutdown order of Stop: cancel the sampling loop and the exit loop, wait for both, record the
// exits already signalled, take a last sample and reap what re-parented to the harness and
// exited, close every pidfd and the epoll set, then restore the subreaper flag if Start set it.
// Only one Observer per process should run at a time: the subreaper flag and re-parenting are
// process-wide.
package observe
