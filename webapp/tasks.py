"""RQ entry points. Thin: they run in the worker's app context and call services."""

from __future__ import annotations

from flask import Flask
from rq.cron import CronScheduler


def register_cron(scheduler: CronScheduler, app: Flask) -> None:
    """Periodic jobs for `flask cron`."""
