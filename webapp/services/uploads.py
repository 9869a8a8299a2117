"""Bringing lessons in from the browser or the API, and giving them back as a zip.

An upload is checked whole before anything changes: the package is read from its spooled
file, extracted into a staging folder under LESSONS_ROOT (so moving a lesson into place is a
rename on one file system), every manifest is validated with the renderer's own validation,
and only then each lesson folder is swapped in, under the job's lock, refusing lessons that
are being rendered. Anything refused leaves the lessons folder as it was.

Files beside the lesson folders in a package belong to the video folder (lessons reach them as
`../source.mp4`). The staging folder stands in for the video folder while lessons are checked:
it holds the package's shared files and hard links to the video folder's others. Shared files
replace their namesakes only when no render of the job is queued or running.

With an object store (STORAGE_URL=s3://…) the package is checked the same way in a local folder
(a private folder of the render cache, the video's shared files fetched into it), then each
lesson lands as a new version and its pointer is switched under the job's lock: readers see the
old lesson or the new one, whole (`_store_in`, webapp/storage/lessons.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import NoResultFound

from ..extensions import db
from ..models import ACTIVE_RENDER_STATES, Lesson, Render, VideoJob
from ..render import ManifestError, load_manifest
from ..storage import Store, StoreError
from ..storage import lessons as store_lessons
from . import admission, jobs, lessons, media, ownership, storage, summary
from .messages import without_server_paths
from .packages import (
    Limits,
    PackageError,
    Plan,
    extract,
    open_archive,
    read_plan,
    refuse_clashes,
    shared_files,
    write_package,
)

log = logging.getLogger(__name__)

STAGING = ".uploads"  # under LESSONS_ROOT; never a video id (those have no dot)
STALE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Installed:
    lesson_paths: list[str]
    scan: jobs.ScanResult
    problems: dict[int, PackageError] = field(default_factory=dict)  # lessons installed still broken


def staging_root(lessons_root: Path) -> Path:
    root = Path(lessons_root) / STAGING
    root.mkdir(parents=True, exist_ok=True)
    return root


def spool_file():
    """Where a request's uploaded file is spooled: on disk beside the lessons, never in memory."""
    return tempfile.TemporaryFile(dir=staging_root(Path(current_app.config["LESSONS_ROOT"])))


def limits() -> Limits:
    config = current_app.config
    return Limits(
        config["UPLOAD_MAX_FILES"], config["UPLOAD_MAX_UNCOMPRESSED_BYTES"], config["UPLOAD_MAX_RATIO"]
    )


def install_package(job: VideoJob, file, lessons_root: Path, *, lesson: int | None = None) -> Installed:
    """Check, extract, validate and install a lesson package for a job. Raises PackageError."""
    file.seek(0, os.SEEK_END)
    size = file.tell()
    file.seek(0)
    archive = open_archive(file)

    def unpack(new: Path) -> tuple[Plan, dict[int, Path]]:
        with archive:
            plan = read_plan(archive, size, limits(), lesson)
            admission.check_unpacked_space(_unpacked_size(plan))
            return plan, extract(archive, plan, new, limits())

    return install(job, Path(lessons_root), unpack)


def install(
    job: VideoJob,
    lessons_root: Path,
    unpack,
    *,
    may_stay_broken: frozenset[int] = frozenset(),
    recheck: Callable[[], None] | None = None,
    copies: dict[int, dict[str, str]] | None = None,
) -> Installed:
    """Install the lesson folders `unpack(stand_in)` writes into the stand-in for the video folder
    (-> (plan, {number: folder})): the video's shared files joined, each lesson validated, then
    swapped in whole. A lesson in `may_stay_broken` is installed even if it still fails its check
    (Installed.problems says how); any other that fails refuses them all. `recheck()` is called
    under the job's lock, just before the swap: it may refuse (PackageError) what changed
    meanwhile. `copies` names, per lesson, files an object store already holds with the same
    bytes (storage/lessons.put_version). Raises PackageError."""
    store = storage.store()
    local = storage.is_local(store)
    with _staging(lessons_root, job.video_id, local) as (new, cache), _disk_full_is_507():
        plan, folders = unpack(new)
        if local:
            refuse_clashes(shared_files(lessons_root / job.video_id), plan)
            _link_shared(lessons_root / job.video_id, new, plan)
        else:
            shared, _folders = store_lessons.video_listing(store, job.video_id)
            refuse_clashes([PurePosixPath(rel) for rel, _info in shared], plan)
            _fetch_shared(store, job.video_id, shared, new, plan, cache)
        if not ownership.marked_for(lessons.marked_course(new), job.course):  # its shared files now in
            raise PackageError(409, ownership.MARKED_ELSEWHERE.format(job.video_id))
        problems = {}
        for number, folder in folders.items():
            try:
                _validate(number, folder)
            except PackageError as exc:
                if number not in may_stay_broken:
                    raise
                problems[number] = exc
        if local:
            installed = _swap_in(job, folders, plan, lessons_root, new.parent, recheck)
        else:
            installed = _store_in(job, folders, plan, store, lessons_root, new, recheck, copies or {})
        return dataclasses.replace(installed, problems=problems)


def _unpacked_size(plan: Plan) -> int:
    members = [info for entries in plan.lessons.values() for info, _path in entries]
    return sum(info.file_size for info in members + [info for info, _path in plan.shared])


@contextlib.contextmanager
def _disk_full_is_507():
    """A disk that fills up while a package is unpacked or installed (other uploads, renders)
    refuses the package as a full disk (507), not as a server error (500)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise PackageError(507, admission.DISK_FULL) from exc
        raise


@contextlib.contextmanager
def _staging(lessons_root: Path, video_id: str, local: bool):
    """(the folder standing in for the video folder, the render cache or None), removed afterwards:
    under LESSONS_ROOT/.uploads for the local store (lessons are renamed into place from there);
    for an object store, a private folder of the render cache, which the video's shared files are
    fetched into (lessons/<videoId>/ inside it, as media.fetch lays keys out)."""
    if local:
        staging = Path(tempfile.mkdtemp(prefix="upload-", dir=staging_root(lessons_root)))
        try:
            yield staging / "new", None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return
    with media.private_folder() as (cache, folder):
        yield folder / "lessons" / video_id, cache


def _fetch_shared(store: Store, video_id: str, shared: list, stand_in: Path, plan: Plan, cache) -> None:
    """Fetch the video folder's shared files the package does not bring into the stand-in.
    `shared` is the store's listing of them, just read; a fetch that starts over lists again."""
    brought = {path.as_posix() for _, path in plan.shared}
    listings = iter([shared])

    def listing():
        found = next(listings, None)
        if found is None:
            found, _folders = store_lessons.video_listing(store, video_id)
        return [(f"lessons/{video_id}/{rel}", info) for rel, info in found if rel not in brought]

    media.fetch(store, listing, stand_in.parent.parent, cache, f"shared files of video={video_id}")


def _validate(number: int, folder: Path) -> None:
    name = f"lesson_{number}"
    if not (folder / "lesson.json").is_file():
        raise PackageError(422, f"{name}: lesson.json is missing.", lesson=name, field="lesson.json")
    try:
        load_manifest(folder, max_duration=current_app.config["LESSON_MAX_SECONDS"])
    except ManifestError as exc:
        problems = without_server_paths(str(exc))  # "field: reason", then any further problems
        raise PackageError(422, f"{name}: {problems}", lesson=name, field=exc.field) from exc


def _link_shared(video_dir: Path, stand_in: Path, plan: Plan) -> None:
    """Hard-link the video folder's shared files the package does not bring into the stand-in."""
    brought = {path for _, path in plan.shared}
    for relative in shared_files(video_dir) if video_dir.is_dir() else []:
        target = stand_in.joinpath(*relative.parts)
        if relative in brought or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(video_dir.joinpath(*relative.parts), target)


def link_or_copy(source: Path, target: Path) -> None:
    """`target` as a hard link to `source` (staging is on the lessons' file system), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def busy_lessons(job: VideoJob, paths: list[str] | None) -> list[str]:
    """Lessons of the job (of `paths`, or all) with a queued or running render."""
    query = (
        sa.select(Lesson.path)
        .join(Render, Render.lesson_id == Lesson.id)
        .where(Lesson.job_id == job.id, Render.state.in_(ACTIVE_RENDER_STATES))
        .distinct()
    )
    if paths is not None:
        query = query.where(Lesson.path.in_(paths))
    return sorted(db.session.scalars(query))


def _lock_idle(job: VideoJob, plan: Plan, paths: list[str], recheck: Callable[[], None] | None) -> None:
    """Take the job's lock (no render can be queued for it until the commit) and refuse lessons
    being rendered: with shared files, every lesson of the video (all of them read those); then
    `recheck()`, if given. A refusal releases the lock."""
    try:
        summary.lock_job(job.id)
    except NoResultFound:
        db.session.rollback()
        raise PackageError(404, "The job was deleted meanwhile.") from None
    busy = busy_lessons(job, None if plan.shared else paths)
    if busy:
        db.session.rollback()
        names = ", ".join(path.rsplit("/", 1)[1] for path in busy)
        what = "a lesson sharing these files" if plan.shared else "this lesson"
        raise PackageError(409, f"{names}: a render of {what} is queued or running; cancel it or wait.")
    if recheck is not None:
        try:
            recheck()
        except BaseException:
            db.session.rollback()
            raise


def _swap_in(
    job: VideoJob,
    folders: dict[int, Path],
    plan: Plan,
    lessons_root: Path,
    staging: Path,
    recheck: Callable[[], None] | None = None,
) -> Installed:
    """Rename the shared files and lesson folders into the video folder, the ones they replace
    aside; all or nothing: a failure on the way puts back everything moved so far (a clash of
    names was refused before, see install_package)."""
    video_dir = lessons_root / job.video_id
    storage.lesson_dir(lessons_root, job.video_id)  # refuses a video folder outside the root
    paths = {number: f"{job.video_id}/lesson_{number}" for number in folders}
    _lock_idle(job, plan, list(paths.values()), recheck)
    video_dir.mkdir(parents=True, exist_ok=True)
    old = staging / "old"
    old.mkdir()
    moves: list[tuple[Path, Path]] = []  # (where it went, where it was), to undo in reverse
    try:
        for _info, relative in plan.shared:
            target = video_dir.joinpath(*relative.parts)
            if target.exists():
                aside = old.joinpath("shared", *relative.parts)
                aside.parent.mkdir(parents=True, exist_ok=True)
                moves.append(_move(target, aside))
            target.parent.mkdir(parents=True, exist_ok=True)
            moves.append(_move(staging.joinpath("new", *relative.parts), target))
        for number, folder in sorted(folders.items()):
            target = video_dir / f"lesson_{number}"
            if target.exists() or target.is_symlink():
                moves.append(_move(target, old / target.name))
            moves.append(_move(folder, target))
    except OSError:
        db.session.rollback()  # releases the lock
        for went, was in reversed(moves):
            with contextlib.suppress(OSError):
                os.rename(went, was)
        raise
    scan = jobs.rescan_lessons(job, lessons_root, replaced=list(paths.values()))  # commits, unlocks
    log.info("lessons uploaded job_id=%s lessons=%s", job.id, ",".join(sorted(paths.values())))
    return Installed([paths[n] for n in sorted(paths)], scan)


def _move(source: Path, target: Path) -> tuple[Path, Path]:
    os.rename(source, target)
    return target, source


def _store_in(
    job: VideoJob,
    folders: dict[int, Path],
    plan: Plan,
    store: Store,
    lessons_root: Path,
    new: Path,
    recheck: Callable[[], None] | None = None,
    copies: dict[int, dict[str, str]] | None = None,
) -> Installed:
    """The object store's swap (storage/lessons.py): each lesson goes up as a version nobody
    reads yet, outside the job's lock (uploads take time); then, under the lock, the shared files
    are uploaded and each lesson's pointer switched, one object each, so a lesson changes whole.
    A failure before a lesson's switch leaves that lesson as it was and removes its version. The
    versions replaced go once the lessons are rescanned (readers still on them read again)."""
    paths = {number: f"{job.video_id}/lesson_{number}" for number in folders}
    versions: dict[int, store_lessons.Version] = {}
    replaced: dict[int, store_lessons.Version | None] = {}
    attempted: set[int] = set()
    try:
        for number, folder in sorted(folders.items()):
            versions[number] = store_lessons.put_version(
                store, paths[number], folder, (copies or {}).get(number), placed=media.remember
            )
        _lock_idle(job, plan, list(paths.values()), recheck)
        for _info, relative in plan.shared:
            store.upload(new.joinpath(*relative.parts), f"lessons/{job.video_id}/{relative.as_posix()}")
        for number in sorted(versions):
            attempted.add(number)  # a failed switch may have happened: its version is left to the sweeper
            replaced[number] = store_lessons.switch(store, paths[number], versions[number])
    except BaseException:
        db.session.rollback()
        for number, version in versions.items():
            if number not in attempted:
                store_lessons.discard(store, paths[number], version)
        raise
    scan = jobs.rescan_lessons(job, lessons_root, replaced=list(paths.values()))  # commits, unlocks
    for number, previous in replaced.items():
        try:
            store_lessons.drop_replaced(store, paths[number], previous)
        except StoreError as exc:  # hidden by the pointer already; the sweeper removes them later
            log.warning("could not remove a replaced lesson lesson=%s error=%s", paths[number], exc)
    log.info("lessons uploaded to the store job_id=%s lessons=%s", job.id, ",".join(sorted(paths.values())))
    return Installed([paths[n] for n in sorted(paths)], scan)


def lesson_package(job: VideoJob, lessons_root: Path, lesson: Lesson | None = None):
    """A temporary file holding the job's lesson folders (or one) as a zip, at position 0, read
    where the store keeps them (an object store: a fetched copy). Raises FileNotFoundError when
    there is no folder."""
    chosen = [lesson] if lesson is not None else [item for item in job.lessons if not item.missing]
    with media.lessons_root_for(job.video_id, lessons_root) as root:
        folders = {}
        for item in chosen:
            folder = storage.lesson_dir(root, item.path)
            if folder.is_dir():
                folders[item.path.rsplit("/", 1)[1]] = folder
        if not folders:
            raise FileNotFoundError("no lesson folders on disk")
        out = tempfile.TemporaryFile(dir=staging_root(lessons_root))  # noqa: SIM115 - send_file closes it
        video_dir = storage.lesson_dir(root, job.video_id) if lesson is None else None
        write_package(out, folders, video_dir)
    out.seek(0)
    return out


def sweep_stale(lessons_root: Path, older_than: float = STALE_SECONDS) -> int:
    """Remove staging folders left by an upload that died half way; returns how many."""
    root = Path(lessons_root) / STAGING
    removed = 0
    if not root.is_dir():
        return 0
    for child in root.iterdir():
        try:
            if child.is_dir() and time.time() - child.stat().st_mtime > older_than:
                shutil.rmtree(child, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed
