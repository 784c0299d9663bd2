"""guard: run a command so that nothing of it outlives the process that started the guard.

    python3 -I guard.py PARENT_PID TIMEOUT_SECONDS -- COMMAND...

Standard library only, run by path (not imported with the Celery app, so it starts fast).

- Parent-death signal: the guard asks the kernel for SIGTERM when its parent (thread) dies,
  then checks that its parent is still PARENT_PID: a parent that died before the prctl sent no
  signal, and the guard then cleans up at once.
- Child subreaper: whatever below the guard loses its parent (`script`'s child, in a session
  of its own; a daemonized grandchild) is re-parented to the guard, never to PID 1 or to
  whoever else is a subreaper above. So the guard sees every process below it as a descendant.
- kill_tree SIGKILLs all descendants at once, each through a pidfd opened and checked against
  its start time (a pid reused in between is never signalled), reaps, and repeats until none is
  left. It runs when the parent dies (SIGTERM), on SIGINT/SIGHUP, when the timeout passes, and
  after the command exits (a checker that leaves something running in the background).
Exit status: the command's, 124 on timeout, 128+signal when stopped by a signal.
What it cannot survive is its own SIGKILL (the OOM killer): then only a cgroup or a PID
namespace per task (proxyline's supervise) still holds the tree.
"""
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36


def prctl(option, arg):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(%d)" % option)


def table():
    """Returns {pid: (ppid, starttime)} of every process, from /proc."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[int(d)] = (int(fields[1]), fields[19])  # stat fields 4 (ppid) and 22 (starttime)
    return out


def descendants(root, procs):
    kids = {}
    for pid, (ppid, _) in procs.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], list(kids.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def kill(pid, starttime):
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return  # gone already
    try:
        with open("/proc/%d/stat" % pid) as f:
            same = f.read().rsplit(")", 1)[1].split()[19] == starttime
        if same:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except (OSError, IndexError):
        pass
    finally:
        os.close(fd)


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_tree():
    me = os.getpid()
    while True:
        procs = table()
        below = descendants(me, procs)
        if not below:
            return
        for pid in below:
            kill(pid, procs[pid][1])
        # Every process below us is ours to reap in the end (subreaper); wait for the direct
        # children, then look again: their children are now ours.
        for pid in below:
            if procs[pid][0] == me:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
        reap()


def stop(signum, _frame=None):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    kill_tree()
    os._exit(128 + signum)


def main(argv):
    if len(argv) < 4 or argv[2] != "--":
        sys.exit("usage: guard.py PARENT_PID TIMEOUT_SECONDS -- COMMAND...")
    parent, timeout, cmd = int(argv[0]), float(argv[1]), argv[3:]
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, stop)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        stop(signal.SIGTERM)
    p = subprocess.Popen(cmd)
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        print("guard: %s still running after %gs, killed" % (cmd[0], timeout), file=sys.stderr, flush=True)
        rc = 124
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    kill_tree()
    sys.exit(rc)


if __name__ == "__main__":
    main(sys.argv[1:])
