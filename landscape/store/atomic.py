"""Writing outputs: through a temporary name, renamed into place only when complete.

Every file the toolkit writes (run files, indexes, results, a report's pages and figures) goes
through `atomic_path`, so a reader never sees half a file, a kill leaves at most a temporary
`.<name>.tmp<pid>` beside it, and any failure removes the temporary. An output that cannot be
written (read-only folder, a folder where a file goes, a file where a folder goes, a full disk)
is a `StoreError` that names the path and what to do, never a traceback, and never advice to
delete something the toolkit did not create.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from landscape.errors import StoreError


def output_error(path: Path, what: str, e: OSError) -> StoreError:
    """A StoreError saying why `path` (a `what`) cannot be written, with the fix."""
    folder = Path(path).parent
    code = e.errno
    if isinstance(e, NotADirectoryError) or code == errno.ENOTDIR:
        found = _file_on_path(Path(path))
        return StoreError(
            f"cannot write {what} {path}: expected a folder at {found}, found a file; choose "
            "another output path"
        )
    reasons = {
        errno.EACCES: f"permission denied in {folder}",
        errno.EPERM: f"permission denied in {folder}",
        errno.EROFS: f"the filesystem of {folder} is read-only",
        errno.ENOSPC: f"no space left on the device of {folder}",
        errno.EDQUOT: f"disk quota exceeded on {folder}",
        errno.EISDIR: f"{path} is a folder, expected a file path",
    }
    reason = reasons.get(code or -1, e.strerror or str(e))
    return StoreError(
        f"cannot write {what} {path}: {reason}; choose another output path (-o) or make "
        f"{folder} writable"
    )


def _file_on_path(path: Path) -> Path:
    """The first component of `path` that exists and is not a folder (else `path` itself)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return path


def ensure_folder(folder: Path, *, what: str) -> None:
    """Create `folder` and its parents; StoreError when a file is in the way or it cannot be
    created."""
    folder = Path(folder)
    if folder.is_dir():
        return
    if folder.exists() or folder.is_symlink():
        raise StoreError(
            f"cannot write {what} into {folder}: expected a folder at {folder}, found a file; "
            "choose another output path"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(
            f"cannot write {what} into {folder}: expected a folder at "
            f"{_file_on_path(folder)}, found a file; choose another output path"
        ) from None
    except OSError as e:
        raise output_error(folder / "x", what, e) from None


def check_file_target(path: Path, *, what: str) -> None:
    """`path` is free or a regular file (a folder or FIFO there cannot be replaced by a file)."""
    path = Path(path)
    if path.is_dir():
        raise StoreError(
            f"cannot write {what} {path}: it is a folder, expected a file path (e.g. "
            f"{path / 'store.h5'}); choose another output path"
        )
    if (path.exists() or path.is_symlink()) and not path.is_file():
        raise StoreError(
            f"cannot write {what} {path}: expected a regular file or nothing there, found "
            "something else (a FIFO, socket or dangling link); choose another output path"
        )


@contextlib.contextmanager
def atomic_path(path: Path, *, what: str, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside `path` to write; renamed over `path` after the block succeeds
    (fsync'd first), removed on any failure. OSErrors become StoreErrors naming `path`."""
    path = Path(path)
    ensure_folder(path.parent, what=what)
    check_file_target(path, what=what)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{suffix}")
    try:
        # created here first, so a read-only folder is said before any writer library runs
        os.close(os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644))
        yield tmp
        fsync(tmp)
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise output_error(path, what, e) from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()


def write_bytes(path: Path, data: bytes, *, what: str) -> None:
    """Write `data` to `path` atomically (see `atomic_path`)."""
    with atomic_path(path, what=what) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str, *, what: str) -> None:
    write_bytes(path, text.encode("utf-8"), what=what)


def remove_output(path: Path, *, what: str) -> None:
    """Remove an output this toolkit wrote earlier (missing is fine)."""
    try:
        Path(path).unlink(missing_ok=True)
    except IsADirectoryError:
        raise StoreError(
            f"cannot replace {what} {path}: it is a folder, expected a file; choose another "
            "output path"
        ) from None
    except OSError as e:
        raise output_error(Path(path), what, e) from None


def fsync(path: Path) -> None:
    """Flush a written file to disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
