// Package supervise runs external commands (checkers such as mubeng) so that they can never be
// orphaned: not by a timeout, not by a SIGTERM of the worker, not even by a SIGKILL of the worker.
//
// It stacks six independent layers, each catching what the one above misses (docs/supervise.md
// has the table):
//
//  1. ProcessGroup: every task in its own process group; cancel = SIGTERM+SIGCONT to the group,
//     a grace period, then SIGKILL.
//  2. Pdeathsig: the task (or its init) gets SIGKILL when the worker thread that started it dies;
//     the starting goroutine holds runtime.LockOSThread from Start to Wait (go.dev/issue/27505).
//  3. Cgroup: one cgroup v2 per task, joined at birth (clone3 CLONE_INTO_CGROUP), killed with
//     cgroup.kill, confirmed empty, removed.
//  4. PIDNamespace: one PID namespace per task whose PID 1 is a tiny init (this binary re-executed,
//     see MaybeInit). When the worker dies, even by SIGKILL, the init dies of its parent-death
//     signal and the kernel kills the whole namespace.
//  5. Subreaper: the worker is a child subreaper; it reaps only orphans of its own tasks (never
//     wait4(-1), which would steal exit codes from exec.Cmd.Wait).
//  6. Cookie: every task carries
//     PROXYLINE_TASK_COOKIE=<owner-pidns>:<owner-pid>:<owner-starttime>:<task-id>. A sweep
//     (Supervisor.Start, and `proxyline cleanup`) kills processes whose owner is dead, after
//     verifying (pid, start time, cookie) right before the signal, through a pidfd. Owners of
//     another PID namespace are not judged by pid (see Sweep).
//
// Every layer is detected at run time (Detect), logged, and can be switched off (Config.Disable).
//
// A binary that uses PIDNamespace must call MaybeInit first thing in main (or TestMain):
//
//	func main() {
//		if code, ok := supervise.MaybeInit(); ok {
//			os.Exit(code)
//		}
//		...
//	}
//
// If MaybeInit is not wired in, the start-up probe notices and the PIDNamespace layer stays off.
//
// Shutdown order of a Supervisor: Stop cancels every running task (SIGTERM, grace, SIGKILL, as on
// a timeout), waits for their Run calls to return, stops the orphan reaper, then removes the
// supervisor's own cgroup directory.
package supervise
