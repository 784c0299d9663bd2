#!/usr/bin/env python3
"""pyqueue: a small, stdlib-only stand-in for the seed's Celery/Redis proxy-checking pipeline.

killtest's pyqueue scenarios run it: a producer puts task ids on a Redis list (Celery's `celery`
queue) and a worker takes them one at a time and, for each, runs a checker subprocess exactly as
the seed's tasks.py ran mubeng:

    subprocess.run(["script", "-q", "/dev/null", "-c", CHECKER], capture_output=True, timeout=...)

then appends {"id", "output"} to a JSON-lines results file. The checker is a shell line that
sleeps (the task is "in the middle" for a while) and prints "pyqueue-checked ID".

  pyqueue.py produce --count N --submitted FILE --checksums FILE
  pyqueue.py worker [--fixed] --results FILE [--sleep SECONDS] [--timeout SECONDS]

Keys: PREFIX:celery (the queue) and PREFIX:unacked (tasks taken, not finished); PREFIX comes
from --prefix or $PYQUEUE_PREFIX (killtest gives each run its own). A task is taken with
BRPOPLPUSH into PREFIX:unacked and removed from it once its result is written, and a worker
starting up puts what is left there back on the queue: a task whose worker was SIGKILLed runs
again (at least once, like Celery's acks_late), so nothing is lost. Redis drops an empty list by
itself; a worker stopped with SIGTERM also deletes both keys, and every key carries a TTL so
that a run that dies before that leaves nothing in Redis for long (never FLUSHALL).

Without --fixed the worker has the seed's bug: SIGKILLed mid-task, nothing stops `script`, whose
child is in a session of its own (util-linux `script` setsid()s it), so the checker runs on,
unsupervised. With --fixed nothing survives the worker: see run_fixed and guard.
"""
import argparse
import ctypes
import hashlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys

TTL = 600  # seconds: a safety net for keys of runs that never got to clean up
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
libc = ctypes.CDLL(None, use_errno=True)


class Redis:
    """Just enough RESP2 for a few list commands."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.rf = self.sock.makefile("rb")

    def __call__(self, *args):
        parts = [str(a).encode() for a in args]
        self.sock.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        return self._reply()

    def _reply(self):
        line = self.rf.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if kind in (b"+", b":"):
            return int(rest) if kind == b":" else rest.decode()
        n = int(rest)
        if n < 0:
            return None
        if kind == b"$":
            return self.rf.read(n + 2)[:-2].decode()
        return [self._reply() for _ in range(n)]


def prctl(option, arg):
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(%d)" % option)


def output_of(tid):
    return "pyqueue-checked %s" % tid


def produce(a, r, queue):
    with open(a.submitted, "w") as sub, open(a.checksums, "w") as sums:
        for i in range(1, a.count + 1):
            r("LPUSH", queue, i)
            r("EXPIRE", queue, TTL)
            sub.write("%d\n" % i)  # written once Redis acknowledged the push
            sub.flush()
            sums.write("%d %s\n" % (i, hashlib.sha256(output_of(i).encode()).hexdigest()))
    print("pyqueue produced %d tasks" % a.count, flush=True)


def run_seed(argv, timeout):
    # The seed's call, verbatim.
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def run_fixed(argv, timeout):
    # Why this leaves nothing behind when the worker is SIGKILLed:
    # - A parent-death signal on the checker itself is not enough: PR_SET_PDEATHSIG reaches only
    #   the direct child (`script`), is cleared in its children, and `script` runs the checker in
    #   a new session (setsid + TIOCSCTTY, HYGIENE.md trap 9), so neither the signal nor a kill of
    #   script's process group reaches the shell and its `sleep`; they would get SIGHUP only when
    #   the pty closes, and a checker may ignore that.
    # - So a guard (this file, `guard`) sits between the worker and `script`, in a session of its
    #   own, with PR_SET_PDEATHSIG(SIGTERM) set in preexec_fn (between fork and exec; it survives
    #   the exec of python3). When the worker dies, the kernel sends the guard SIGTERM.
    # - The guard is a child subreaper: whatever below it loses its parent (script's setsid'd
    #   shell, the shell's sleep) is re-parented to the guard, never to PID 1 or killtest. On
    #   SIGTERM the guard SIGKILLs its children, reaps them and repeats until it has none, so the
    #   whole tree goes, generation by generation, whatever sessions or groups it made.
    # - The pdeathsig is per thread: this worker forks from its only (main) thread, which lives as
    #   long as the worker. A worker that died between fork and prctl sends no signal: the guard
    #   checks its parent is still the worker after installing its handler.
    # The guard also enforces the task timeout itself (killing the tree, not just `script`).
    # What it cannot survive is its own SIGKILL (e.g. OOM): proxyline's supervise adds a cgroup
    # and a PID namespace for that.
    guard = [sys.executable, os.path.abspath(__file__), "guard", str(os.getpid()), str(timeout), "--"]
    return subprocess.run(guard + argv, capture_output=True, text=True, timeout=timeout + 10, check=False,
                          start_new_session=True, preexec_fn=lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM))


def children():
    # The kernel's own list of our children (CONFIG_PROC_CHILDREN): one small read per thread,
    # so the guard's cleanup stays in the milliseconds a parent-death signal is allowed even on
    # a busy machine; scanning every /proc/*/stat is the fallback.
    out = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open("/proc/self/task/%s/children" % tid) as f:
                out.extend(int(p) for p in f.read().split())
        return out
    except OSError:
        pass
    me, out = os.getpid(), []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == me:
                out.append(int(d))
    return out


def kill_tree():
    # Only our own children are killed, and each stays a zombie until we reap it, so a pid
    # cannot be reused in between. Their children are ours once they are reaped (subreaper).
    kids = children()
    while kids:
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in kids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        kids = children()


def guard(a):
    prctl(PR_SET_CHILD_SUBREAPER, 1)

    def parent_died(*_):
        kill_tree()
        os._exit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, parent_died)
    if os.getppid() != a.parent:
        parent_died()
    p = subprocess.Popen(a.argv[1:] if a.argv[:1] == ["--"] else a.argv)
    try:
        rc = p.wait(a.timeout)
    except subprocess.TimeoutExpired:
        rc = 124
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # one kill_tree at a time
    kill_tree()
    sys.exit(rc)


def worker(a, r, queue, unacked):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    restored = 0
    while r("RPOPLPUSH", unacked, queue) is not None:
        restored += 1
    run = run_fixed if a.fixed else run_seed
    print("pyqueue worker ready (%s, %d task(s) restored)" % ("fixed" if a.fixed else "seed", restored), flush=True)
    while not stop:
        tid = r("BRPOPLPUSH", queue, unacked, 1)  # 1 s, so a SIGTERM is seen within a second
        if tid is None:
            continue
        r("EXPIRE", unacked, TTL)
        checker = "sleep %s; echo %s" % (shlex.quote(a.sleep), shlex.quote(output_of(tid)))
        try:
            res = run(["script", "-q", "/dev/null", "-c", checker], a.timeout)
            out = res.stdout.strip() if res.returncode == 0 else "failed %d: %s" % (res.returncode, res.stderr.strip())
        except subprocess.TimeoutExpired:
            out = "timeout"
        with open(a.results, "a") as f:
            f.write(json.dumps({"id": tid, "output": out, "worker": os.getpid()}) + "\n")
        r("LREM", unacked, 1, tid)
        print("pyqueue task %s done: %s" % (tid, out), flush=True)
    left = r("LLEN", queue) + r("LLEN", unacked)
    r("DEL", queue, unacked)
    print("pyqueue worker stopped (%d task(s) left, keys deleted)" % left, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--redis", default="127.0.0.1:6379")
    p.add_argument("--prefix", default=os.environ.get("PYQUEUE_PREFIX", ""))
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("produce")
    pr.add_argument("--count", type=int, default=3)
    pr.add_argument("--submitted", required=True)
    pr.add_argument("--checksums", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--fixed", action="store_true")
    w.add_argument("--results", required=True)
    w.add_argument("--sleep", default="3")
    w.add_argument("--timeout", type=float, default=30)
    g = sub.add_parser("guard")
    g.add_argument("parent", type=int)
    g.add_argument("timeout", type=float)
    g.add_argument("argv", nargs=argparse.REMAINDER)
    a = p.parse_args()
    if a.cmd == "guard":
        return guard(a)
    if not a.prefix:
        p.error("--prefix or $PYQUEUE_PREFIX is required")
    r = Redis(a.redis)
    queue, unacked = a.prefix + ":celery", a.prefix + ":unacked"
    if a.cmd == "produce":
        produce(a, r, queue)
    else:
        worker(a, r, queue, unacked)


if __name__ == "__main__":
    main()
