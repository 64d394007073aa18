"""Publishing finished files so that a crash or a power loss never leaves one
that looks finished but is not (as ``rust/system/publish.rs`` does for the core's
files): contents go to ``<name>.partial``, are flushed to disk, renamed into
place, and the directory is flushed too, since the rename lives in the
directory and without that the new name may not survive a power loss."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from typing import IO

PathLike = str | os.PathLike


def partial_path(path: PathLike) -> str:
    """Where `path` is written before it is published: ``<name>.partial``."""
    return os.fspath(path) + ".partial"


@contextlib.contextmanager
def partial_file(path: PathLike, mode: str = "wb", **open_args) -> Iterator[IO]:
    """Opens `path`'s partial file for writing; when the block ends, its
    contents are flushed to disk. If the block raises, the partial file is
    removed. Nothing is published: :func:`publish` does that."""
    partial = partial_path(path)
    try:
        with open(partial, mode, **open_args) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        remove_quietly(partial)
        raise


def publish(path: PathLike) -> None:
    """Renames `path`'s partial file, written by :func:`partial_file`, into
    place and flushes the directory entry. A partial file that cannot be
    renamed is removed."""
    try:
        os.replace(partial_path(path), path)
    except BaseException:
        remove_quietly(partial_path(path))
        raise
    _sync_directory_of(path)


def write_durably(path: PathLike, data: bytes | str) -> None:
    """Writes `data` (text as UTF-8) to `path` as a whole. On an error the
    partial file is removed and any earlier `path` is left as it was."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with partial_file(path) as f:
        f.write(data)
    publish(path)


def remove_quietly(path: PathLike) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _sync_directory_of(path: PathLike) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not hasattr(os, "O_DIRECTORY"):  # Windows: a directory cannot be flushed
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:
        # Some file systems cannot flush a directory (EINVAL): they offer
        # nothing beyond the rename itself.
        if e.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)
