"""Work over many members: parallel verification and extraction to a folder, removed on failure."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator

from .errors import UnsafePath


def run_parallel(items: Iterable[int], action: Callable[[int], None], workers: int) -> None:
    """Run ``action(item)`` over ``items`` on worker threads; stop and re-raise the first error.

    PBKDF2, AES, inflate and hashing all release the GIL, so members really run in parallel.
    """
    items = iter(items)
    if workers <= 1:
        for item in items:
            action(item)
        return
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run() -> None:
        while True:
            with lock:
                if errors:
                    return
                item = next(items, None)
            if item is None:
                return
            try:
                action(item)
            except BaseException as exc:  # re-raised in the calling thread
                with lock:
                    errors.append(exc)
                return

    threads = [threading.Thread(target=run, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def extract_members(
    dest_dir: str | os.PathLike[str],
    members: Callable[[], Iterator[tuple[int, str]]],
    chunks: Callable[[int], Iterator[bytes]],
    workers: int,
) -> None:
    """Write every member (``members()`` yields (index, name) in data order) under ``dest_dir``.

    Every target is checked before anything is written; members are checked while they are
    written (``chunks`` raises at a member's end when it is damaged); on any failure everything
    written so far (files and the folders this call created) is removed before the error is
    raised. Existing files are never overwritten (``FileExistsError``), and nothing is written
    through a symbolic link.
    """
    os.makedirs(dest_dir, exist_ok=True)
    root = os.path.realpath(dest_dir)

    def target_of(name: str) -> str:
        return os.path.join(root, *name.split("/"))

    safe_parents: set[str] = set()
    for _index, name in members():
        target = target_of(name)
        parent = os.path.dirname(target)
        if parent not in safe_parents:
            # Belt and braces after check_name: an existing symlinked folder inside the
            # destination must not lead outside it.
            real = os.path.realpath(parent)
            if real != root and not real.startswith(root + os.sep):
                raise UnsafePath(f"The member {name!r} would be written outside the destination folder.")
            safe_parents.add(parent)
        if os.path.lexists(target):
            raise FileExistsError(f"{target} already exists; extract into an empty folder.")
    lock = threading.Lock()
    created_dirs: list[str] = []
    known_dirs = {root}
    done: list[str] = []
    names: dict[int, str] = {}
    pending = members()

    def next_index() -> Iterator[int]:
        for index, name in pending:
            with lock:
                names[index] = name
            yield index

    def extract(index: int) -> None:
        with lock:
            target = target_of(names.pop(index))
            missing = []
            parent = os.path.dirname(target)
            while parent not in known_dirs and not os.path.isdir(parent):
                missing.append(parent)
                parent = os.path.dirname(parent)
            for folder in reversed(missing):
                os.mkdir(folder)
                created_dirs.append(folder)
            known_dirs.add(os.path.dirname(target))
        # "x": O_CREAT | O_EXCL, so neither an existing file nor a symlink is followed.
        with open(target, "xb") as out:
            try:
                for chunk in chunks(index):
                    out.write(chunk)
            except BaseException:
                out.close()
                os.unlink(target)
                raise
        with lock:
            done.append(target)

    try:
        run_parallel(next_index(), extract, workers)
    except BaseException:
        for path in done:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        for folder in reversed(created_dirs):
            with contextlib.suppress(OSError):  # not empty: something else was put there
                os.rmdir(folder)
        raise
