"""Checks on a store file before HDF5 opens it: what HDF5 itself would hang or loop on.

`check_regular`: a FIFO would block `open` forever, a folder or device is not a store file, and
a symbolic link must stay inside the store's folder. `check_global_heaps`: HDF5 1.14 loops
forever, holding the GIL, on a global heap object whose size runs past its collection.
"""

from __future__ import annotations

import functools
import mmap
import os
import stat
from pathlib import Path

from landscape.errors import StoreError


def check_regular(path: Path, *, what: str, inside: Path | None = None) -> None:
    """`path` is a regular file (not a FIFO, device or folder), and, when it is a symbolic link
    and `inside` is given, one that resolves inside the folder `inside`."""
    try:
        link = os.lstat(path)
        st = os.stat(path)
    except FileNotFoundError:
        raise StoreError(f"{what} {path}: no such file") from None
    except OSError as e:
        raise StoreError(f"{what} {path}: cannot be read ({e.strerror})") from None
    if stat.S_ISLNK(link.st_mode) and inside is not None:
        target = path.resolve()
        if not target.is_relative_to(inside.resolve()):
            raise StoreError(
                f"{what} {path}: expected a file inside the store folder {inside}, found a "
                f"symbolic link to {target}; a store never links out of its folder"
            )
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(
            f"{what} {path}: expected a regular file, found {_file_type(st.st_mode)}; "
            "a store holds only regular files"
        )


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "something that is not a regular file"


_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_GCOL = b"GCOL\x01\x00\x00\x00"  # a global heap collection: signature, version 1, reserved


def check_global_heaps(path: Path, *, what: str) -> None:
    """Refuse a file whose global heap collections (where HDF5 keeps variable-length strings)
    are inconsistent: HDF5 1.14 loops forever, holding the GIL, on an object whose size runs
    past its collection, so this is checked from the raw bytes before h5py opens the file."""
    st = os.stat(path)
    problem = _heap_problem(str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if problem:
        raise StoreError(f"{what} {path}: damaged ({problem})")


@functools.lru_cache(maxsize=512)
def _heap_problem(path: str, ino: int, size: int, mtime_ns: int) -> str | None:
    """What is wrong with the global heaps of the file (cached per file version), or None."""
    if size < len(_SIGNATURE):
        return None  # h5py says what is wrong with it
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        length = _sizeof_lengths(data)
        if length is None:
            return None  # not HDF5 or an unusual superblock: h5py says what is wrong
        at = data.find(_GCOL)
        while at >= 0:
            if problem := _collection_problem(data, at, length):
                return f"global heap collection at byte {at}: {problem}"
            at = data.find(_GCOL, at + 1)
    return None


def _sizeof_lengths(data: mmap.mmap) -> int | None:
    """The superblock's "size of lengths" (bytes), or None when there is no superblock at
    offset 0, 512, 1024, ... that this reads."""
    base = 0
    while base + 16 <= len(data):
        if data[base : base + 8] == _SIGNATURE:
            version = data[base + 8]
            at = {0: 14, 1: 14, 2: 10, 3: 10}.get(version)
            return data[base + at] if at is not None and data[base + at] in (2, 4, 8) else None
        base = 512 if base == 0 else base * 2
    return None


def _collection_problem(data: mmap.mmap, at: int, length: int) -> str | None:
    """Walk the objects of the collection at byte `at` as HDF5 does; say what does not fit."""
    header = -(-(8 + length) // 8) * 8
    if at + header > len(data):
        return "its header runs past the end of the file"
    size = int.from_bytes(data[at + 8 : at + 8 + length], "little")
    if size < header or at + size > len(data):
        return f"it declares {size} bytes, the file holds {len(data) - at} from there"
    p = header
    while p + header <= size:
        index = int.from_bytes(data[at + p : at + p + 2], "little")
        declared = int.from_bytes(data[at + p + 8 : at + p + 8 + length], "little")
        need = header + -(-declared // 8) * 8 if index else declared
        if need <= 0 or p + need > size:
            return f"object {index} at byte {at + p} declares {declared} bytes, {size - p} remain"
        p += need
    return None
