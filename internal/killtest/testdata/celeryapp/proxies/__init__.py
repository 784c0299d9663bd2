"""proxies: a small Celery 5 pipeline that checks chunks of proxies with mubeng, as the seed's did.

`celery -A proxies worker` finds the app in proxies.celery. README.md (one directory up) tells
the story: the bug, the fix, and the killtest scenarios that judge both.
"""
from .celery import app

__all__ = ("app",)
