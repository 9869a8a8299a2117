"""Whether a lesson package may come in, decided before its body is read (views/bodies.py) and
again once its archive's directory is known (uploads.install_package); and whether one more
event stream may stay open for a user.

- Uploads in flight: at most UPLOAD_MAX_CONCURRENT per user, counted in Redis (queue.py). A slot
  is given back when the request ends, however it ends; one whose server died with it lapses
  SLOT_IDLE seconds after its upload last wrote a byte (the spooled file touches it as the body
  comes in), so a crash locks nobody out for long.
- Disk space beside the lessons, where packages are spooled and unpacked: the package itself
  (its declared size, or the largest allowed when the client does not say), then what its
  archive says it unpacks to, must each leave UPLOAD_DISK_RESERVE_BYTES free.
- Package downloads in flight (each made whole on the lessons' disk before it is sent): at most
  UPLOAD_MAX_CONCURRENT per user too, and none while the disk is short of the reserve.
- Event streams open: at most EVENTS_MAX_PER_USER per user (each holds one of the web server's
  connections), counted the same way; an open stream refreshes its slot as it goes (at most
  every SLOT_TOUCH_EVERY s, whether it sends events or heartbeats).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from .. import queue, shared_state
from ..models import User
from .packages import PackageError

log = logging.getLogger(__name__)

SLOT_IDLE = 600  # seconds without a byte written after which a slot is free again
SLOT_TOUCH_EVERY = 15  # seconds between two refreshes of a slot while its body comes in
SLOT_RETRY_AFTER = 30  # seconds, told to a user at their limit of uploads in flight
STREAM_SLOT_MIN_IDLE = 60  # seconds an open stream's slot counts without being refreshed, at least
DISK_RETRY_AFTER = 300  # seconds, told when the disk beside the lessons is too full
DISK_FULL = "The server does not have enough disk space for this upload right now. Try again later."


class TooManyUploads(Exception):
    def __init__(self, limit: int):
        self.message = (
            f"You already have {limit} upload{'s' if limit != 1 else ''} in progress (one cut off "
            f"counts for up to {SLOT_IDLE // 60} minutes). Wait for one to finish, then try again."
        )
        super().__init__(self.message)


class TooManyDownloads(Exception):
    def __init__(self, limit: int):
        self.message = (
            f"You already have {limit} lesson packages being made or downloaded. Wait for one to "
            "finish, then try again."
        )
        super().__init__(self.message)


class TooManyStreams(Exception):
    def __init__(self, limit: int):
        self.message = (
            f"You have at most {limit} open event streams (one per open job page or client); close "
            "one, or poll the status endpoint instead."
        )
        super().__init__(self.message)


class DiskFull(Exception):
    def __init__(self):
        self.message = DISK_FULL
        super().__init__(self.message)


@dataclass
class Slot:
    owner: str
    name: str
    touched: float = field(default_factory=time.monotonic)
    kind: str = "upload"
    idle: int = SLOT_IDLE

    def due(self) -> bool:
        """Time to refresh it (every SLOT_TOUCH_EVERY s at most)."""
        return time.monotonic() - self.touched >= SLOT_TOUCH_EVERY

    def touch(self) -> None:
        """The request is still going: keep its slot (at most every SLOT_TOUCH_EVERY s)."""
        if not self.due():
            return
        self.touched = time.monotonic()
        try:
            shared_state.touch_slot(self.kind, self.owner, self.name, self.idle)
        except queue.Unavailable as exc:
            log.warning("%s slot not refreshed error=%s", self.kind, exc)


def take_slot(user: User) -> Slot | None:
    """Count one upload of `user` in flight (UPLOAD_MAX_CONCURRENT at most; TooManyUploads).
    Give it back with give_slot however the upload ends. Without Redis, uploads go on uncounted
    (logged), as the other limits do."""
    limit = current_app.config["UPLOAD_MAX_CONCURRENT"]
    return _take(Slot(str(user.id), os.urandom(8).hex(), idle=SLOT_IDLE), limit, TooManyUploads)


def take_download_slot(user: User) -> Slot | None:
    """Count one lesson package download of `user` (made whole on the lessons' disk, then sent):
    UPLOAD_MAX_CONCURRENT at most, like uploads (TooManyDownloads). Give it back with give_back."""
    slot = Slot(str(user.id), os.urandom(8).hex(), kind="download", idle=SLOT_IDLE)
    return _take(slot, current_app.config["UPLOAD_MAX_CONCURRENT"], TooManyDownloads)


def give_back(slot: Slot | None) -> Callable[[], None]:
    """give_slot(slot) for a response's call_on_close, which runs after the request's context."""
    app = current_app._get_current_object()

    def give() -> None:
        if slot is not None:
            with app.app_context():
                give_slot(slot)

    return give


def _take(slot: Slot, limit: int, refusal: type[Exception]) -> Slot | None:
    """`slot` counted among its owner's of its kind, or `refusal(limit)`; None without Redis."""
    try:
        if not shared_state.take_slot(slot.kind, slot.owner, slot.name, limit, slot.idle):
            raise refusal(limit)
    except queue.Unavailable as exc:
        log.warning("%s slots unavailable error=%s", slot.kind, exc)
        return None
    return slot


def give_slot(slot: Slot) -> None:
    try:
        shared_state.give_slot(slot.kind, slot.owner, slot.name)
    except queue.Unavailable as exc:  # it lapses after its idle time
        log.warning("%s slot not given back error=%s", slot.kind, exc)


def take_stream_slot(user: User, heartbeat: float) -> Slot | None:
    """Count one open event stream of `user` (EVENTS_MAX_PER_USER at most; TooManyStreams). The
    stream touches it as it goes; one whose server died lapses after a few heartbeats' time. Give
    it back with give_slot when the stream's response closes. Without Redis, None: the stream
    cannot work anyway."""
    idle = max(STREAM_SLOT_MIN_IDLE, round(4 * heartbeat))
    slot = Slot(str(user.id), os.urandom(8).hex(), kind="stream", idle=idle)
    return _take(slot, current_app.config["EVENTS_MAX_PER_USER"], TooManyStreams)


def _free_space() -> int:
    """Free bytes on the disk of LESSONS_ROOT, where packages are spooled (its .uploads folder)."""
    root = Path(current_app.config["LESSONS_ROOT"])
    root.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(root).free


def check_disk_space(length: int | None) -> None:
    """DiskFull unless `length` bytes of package (the largest allowed when the client does not
    say) leave UPLOAD_DISK_RESERVE_BYTES free beside the lessons."""
    config = current_app.config
    size = length if length is not None else config["UPLOAD_MAX_BYTES"]
    if _free_space() < size + config["UPLOAD_DISK_RESERVE_BYTES"]:
        raise DiskFull()


def check_unpacked_space(unpacked: int) -> None:
    """PackageError 507 unless unpacking `unpacked` bytes leaves UPLOAD_DISK_RESERVE_BYTES free."""
    if _free_space() < unpacked + current_app.config["UPLOAD_DISK_RESERVE_BYTES"]:
        raise PackageError(507, DISK_FULL)
