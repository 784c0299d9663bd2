"""The Celery app: a Redis broker, late acks, one task at a time per pool process.

Everything comes from the environment, so that killtest scenarios (and you) can run several
workers with different settings from one code base:

  CELERY_BROKER_URL          redis://127.0.0.1:6379/0 by default
  PROXIES_QUEUE              the task queue, "proxies" by default
  PROXIES_VISIBILITY_TIMEOUT seconds before kombu hands an unacknowledged task to another worker
                             (Celery's default, 3600, unless set)
  PROXIES_RESTORE_EVERY      seconds between this worker's scans for such tasks; 0 (default)
                             leaves it to kombu, which scans at start-up and then only about
                             every 100 s (every tenth call of a 10 s timer, kombu 5.2)

The task itself (proxies.tasks) reads the rest. See README.md for the bug and its fix.
"""
import os

from celery import Celery, bootsteps

app = Celery("proxies", include=["proxies.tasks"])
app.conf.update(
    broker_url=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
    broker_transport_options={
        "visibility_timeout": float(os.environ.get("PROXIES_VISIBILITY_TIMEOUT", "3600")),
    },
    task_default_queue=os.environ.get("PROXIES_QUEUE", "proxies"),
    # A realistic pipeline: a task is acknowledged once it finished (a worker that dies mid-task
    # does not lose it: the broker hands it out again), and a worker takes one task at a time.
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)


class Redeliver(bootsteps.StartStopStep):
    """Hands out again, every PROXIES_RESTORE_EVERY seconds, the tasks of workers that died.

    With Redis, a task taken by a worker that is then SIGKILLed stays in the `unacked` hash
    until some worker's kombu restores it, once it is older than the visibility timeout. kombu
    looks only at start-up and about every 100 s after; a pipeline that must recover a crashed
    worker's task within seconds looks more often. The visibility timeout must stay longer than
    any task, or a task still running is handed out twice.
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.every = float(os.environ.get("PROXIES_RESTORE_EVERY", "0"))
        self.tref = None

    def start(self, parent):
        if self.every <= 0:
            return
        qos = parent.task_consumer.channel.qos
        # interval=1: act on every call (kombu's own timer passes 10, acting on every tenth).
        self.tref = parent.timer.call_repeatedly(self.every, qos.restore_visible, kwargs={"num": None, "interval": 1})

    def stop(self, parent):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


app.steps["consumer"].add(Redeliver)
