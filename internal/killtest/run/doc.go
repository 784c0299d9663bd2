// Package run executes one killtest scenario against a real system and judges it.
//
// A run: make a temp dir (${TMP}) and a run id; make sure the ports the scenario names are free
// (one held by another process is a harness error naming it); create a run cgroup when cgroup v2
// is writable
// (else run without one and say so in the report); start the observer (subreaper, cookie
// "KILLTEST_RUN=<id>", the cgroup); start the components in order — each with the cookie in
// its environment, its own process group, a parent-death signal, inside the run cgroup — and
// wait for each to be ready (log line, TCP port, file, polled with deadlines); mark "ready";
// evaluate the "before" probes; run the workload (cycles marked "cycle-N") while the fault
// scheduler fires faults on their triggers (restarting components when asked, marking
// cycles); poll the wait conditions; begin the stop phase (observe.BeginStop) and stop the
// components in reverse order (signal, deadline, SIGKILL); mark "stopped"; run the detectors,
// the exit check, the "after" probes and the task history. Every signal the runner sends (faults,
// stops, escalations) is recorded with the identities it hit: the orphan detector says what ended
// an orphan, and the exit check never blames the system for a fault's kill.
//
// Shutdown order of teardown, which runs on every path, harness errors and cancellation
// included: cancel the fault scheduler and workload and wait for their goroutines; SIGKILL the
// process group of every process the runner started; write cgroup.kill of the run cgroup;
// SIGKILL every attributed process still alive (identity re-verified by (pid, starttime)
// through a pidfd); poll until the observer sees none (zombies reaped); stop the observer;
// remove the cgroup; remove ${TMP} unless the scenario did not pass. If anything survives, the
// run records a CleanupError, which makes killtest exit 2.
//
// The runner's state is in three parts (state.go): the plan (the instantiated scenario and the
// run's identity and environment; never written once built), the live state (components,
// processes, signals sent, events, fault trees, the observer; each lock says what it guards) and
// the results (fault outcomes, step and wait errors, notes). Errors stay error values until
// Run renders the report.
package run
