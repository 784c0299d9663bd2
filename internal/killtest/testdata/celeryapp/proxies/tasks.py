"""check_proxy_chunk: run mubeng on a chunk of proxies, append the live ones to a results file.

The seed's tasks.py ran mubeng like this (mubeng reads stdin when stdin is not a terminal, so
it was wrapped in `script`, which gives it a pseudo-terminal):

    cmd = ["script", "-q", "/dev/null", "-c", shlex.join(mubeng_cmd)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

run_seed is that call, verbatim. run_fixed is the fix (PROXIES_FIXED=1): see README.md and
guard.py. Settings, from the environment:

  PROXIES_RESULTS        JSON-lines file the task appends {"id", "output", ...} to (required)
  PROXIES_CHECKER        the mubeng program ("mubeng" from PATH by default)
  PROXIES_CHECK_TIMEOUT  mubeng's -t, per proxy ("2s", the seed's)
  PROXIES_FIXED          "1": run the checker the fixed way
  PROXIES_HEARTBEAT      seconds between "checker running" log lines while mubeng runs (1)
"""
import ctypes
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading

from celery.signals import worker_process_init
from celery.utils.log import get_task_logger

from .celery import app

log = get_task_logger(__name__)

TIMEOUT = 120  # the seed's subprocess timeout, in seconds
GUARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guard.py")


def run_seed(cmd, timeout):
    # The seed's call, verbatim.
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def run_fixed(cmd, timeout):
    """Runs cmd under guard.py, which takes the whole checker tree down when this process dies.

    Which process must the parent-death signal be tied to? Celery's prefork pool runs the task
    in a pool process, a child of the main worker process. When the main process is SIGKILLed,
    the kernel SIGKILLs the pool process: Celery (5.2.6 here: PR_SET_PDEATHSIG in
    process_initializer) asks for it, and so does _pool_process_dies_with_main. So the guard's
    signal is tied to the pool process (to the thread that forks the guard: the pool process's
    main thread, which runs the tasks), and the chain is complete: main dies -> kernel SIGKILLs
    the pool process -> kernel sends the guard SIGTERM -> the guard SIGKILLs every process below
    it, `script`'s child in its own session included.
    The guard sets its parent-death signal itself, first thing, and then checks that its parent
    is still this process (no preexec_fn: with the heartbeat thread running, the Python docs
    call preexec_fn unsafe; the check closes the window between fork and prctl either way).
    The guard is in a session of its own so that a Ctrl-C or a signal to the worker's process
    group (a warm shutdown lets running tasks finish) does not cut the checker short.
    The guard enforces the timeout itself, killing the whole tree; the subprocess timeout is a
    backstop only, as it would kill the guard alone.
    """
    argv = [sys.executable, "-I", GUARD, str(os.getpid()), str(timeout), "--"] + cmd
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30, check=False,
                          start_new_session=True)


@worker_process_init.connect
def _pool_process_dies_with_main(**_):
    """Fixed mode: the pool process gets SIGKILL when the main worker process dies.

    Celery 5.2.6 does this itself; the fix does not rely on it (another version or pool may
    not). It runs in the pool process at start-up, in the thread that lives as long as it.
    """
    if os.environ.get("PROXIES_FIXED") != "1":
        return
    main = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != main:  # the main process died before the prctl
        os._exit(1)


class Heartbeat:
    """Logs "chunk ID: checker running for Ns" every `every` seconds until stopped."""

    def __init__(self, chunk_id, every):
        self.chunk_id, self.every = chunk_id, every
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        n = 0
        while not self.done.wait(self.every):
            n += 1
            log.info("chunk %s: checker running for %gs", self.chunk_id, n * self.every)

    def __enter__(self):
        if self.every > 0:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()


def append_result(record):
    # One write(2) on an O_APPEND descriptor: lines of concurrent workers never interleave.
    fd = os.open(os.environ["PROXIES_RESULTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


@app.task(name="proxies.check_proxy_chunk", acks_late=True)
def check_proxy_chunk(chunk_id, proxies):
    fixed = os.environ.get("PROXIES_FIXED") == "1"
    with tempfile.TemporaryDirectory(prefix="chunk-%s-" % chunk_id) as d:
        chunk, live = os.path.join(d, "chunk.txt"), os.path.join(d, "live.txt")
        with open(chunk, "w") as f:
            f.write("".join(p + "\n" for p in proxies))
        # -g 1: one proxy at a time, in the chunk's order.
        mubeng_cmd = [os.environ.get("PROXIES_CHECKER", "mubeng"), "-f", chunk, "--check", "-g", "1",
                      "-t", os.environ.get("PROXIES_CHECK_TIMEOUT", "2s"), "-o", live]
        cmd = ["script", "-q", "/dev/null", "-c", shlex.join(mubeng_cmd)]
        log.info("chunk %s: checking %d proxies (%s)", chunk_id, len(proxies), "fixed" if fixed else "seed")
        with Heartbeat(chunk_id, float(os.environ.get("PROXIES_HEARTBEAT", "1"))):
            result = (run_fixed if fixed else run_seed)(cmd, TIMEOUT)
        found = []
        if os.path.exists(live):
            with open(live) as f:
                found = sorted(line.strip() for line in f if "://" in line)
    output = "live: " + ",".join(found)
    append_result({"id": chunk_id, "output": output, "returncode": result.returncode, "pid": os.getpid()})
    log.info("chunk %s: %s (exit %d)", chunk_id, output, result.returncode)
    return output
