"""Where datasets live on disk, md5 checks, and the one download routine.

The data folder is, in order: the `data_dir` argument (the CLI's `--data-dir`), the environment
variable `LANDSCAPE_DATA`, else `./data` relative to the working directory. A download is
streamed to a temporary name in the target folder and renamed only after its md5 matches, so an
interrupted or corrupt download never leaves a file that looks complete.

>>> resolve_data_dir(Path("/tmp/datasets"))
PosixPath('/tmp/datasets')
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from landscape.errors import DataError

ENV_VAR = "LANDSCAPE_DATA"
DEFAULT_DATA_DIR = Path("data")
CHUNK = 1 << 20  # bytes per read when hashing or downloading
TIMEOUT_S = 60.0  # seconds without data before a download gives up


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """The folder datasets are looked for and downloaded into.

    `data_dir` wins; else `$LANDSCAPE_DATA`; else `./data` (relative, so it follows the
    working directory, as the CLI's default does).
    """
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(ENV_VAR, "")
    return Path(env) if env else DEFAULT_DATA_DIR


def md5_bytes(data: bytes) -> str:
    """md5 hex digest of `data` (an integrity check, not security)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_file(path: Path) -> str:
    """md5 hex digest of the file at `path`, read in 1 MiB chunks."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(url: str, dest: Path, md5: str) -> Path:
    """Download `url` to `dest` (creating its folder) and check its md5; returns `dest`.

    The bytes go to a hidden `.part` file next to `dest` and are renamed with `os.replace`
    only when the md5 matches; on any failure the partial file is removed and `DataError`
    says what to do.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            found = _stream_to(url, out, dest)
        if found != md5:
            raise DataError(
                f"download {url}: md5 mismatch, expected {md5}, found {found}; the server sent "
                f"something else. Try again later, or put a correct copy at {dest} and run "
                "with --offline"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _stream_to(url: str, out: BinaryIO, dest: Path) -> str:
    """Copy the body of `url` into `out`; returns the md5 of what was written."""
    h = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as e:  # URLError, HTTPError, timeouts, disk full
        raise DataError(
            f"download {url}: failed ({e}); check the network connection, or download the "
            f"file by hand to {dest} and run with --offline"
        ) from e
    return h.hexdigest()
