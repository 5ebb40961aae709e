"""One writer per store: a lock file created with O_CREAT | O_EXCL beside the store's index.

`landscape train` and `landscape analyze` hold `<store>.lock` (e.g. `runs/quick.h5.lock`) while
they write a store; it names the holder (pid, host, start time, command). A second writer is
refused with that name, or waits (`wait=True`, `--wait`). Exclusive creation is atomic on local
filesystems and on NFS (v3 and later) and Lustre, which a Slurm cluster's nodes share; fcntl and
flock locks are not reliable there, so they are not used.

What is and is not guaranteed:

- two writers on one store, on one machine or on several sharing the filesystem: the second is
  refused (or waits) as long as the first runs;
- a lock left by a process that died on *this* host (its pid is gone, or now belongs to a
  process started later, or the host rebooted) is taken over, with a note;
- a lock left by a process on *another* host cannot be checked from here: the message names
  the host and pid; once that process is known to be gone, remove the lock file (landscape
  created it; nothing else is in it);
- hosts that share a filesystem must have distinct host names (containers that share a name
  and a store but not a process table would see each other's pids as gone).

Workers of an executor (Dask, Slurm) take no lock: they write their own result files, and only
the command holding the lock writes the index.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from landscape.errors import StoreError
from landscape.store.atomic import ensure_folder, output_error

STALE_UNREADABLE_S = 30.0  # a lock file still empty or unreadable after this is garbage


def lock_path(store: Path) -> Path:
    """`runs/quick.h5` -> `runs/quick.h5.lock`."""
    return store.with_name(store.name + ".lock")


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: enough to name it and, on the same host, to tell whether it lives."""

    pid: int
    host: str
    started: str  # ISO 8601, local time with offset
    command: str
    boot_id: str = ""  # Linux: changes at every boot
    start_ticks: int = -1  # Linux: the process's start time since boot, in clock ticks

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, since {self.started} ({self.command})"

    @classmethod
    def me(cls, command: str) -> Holder:
        pid = os.getpid()
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        return cls(pid, socket.gethostname(), now, command, _boot_id(), _start_ticks(pid))

    def gone(self) -> bool:
        """True when this holder is known to be dead: same host, and its pid is not running,
        or runs a process started later, or the host rebooted since. Another host: False."""
        if self.host != socket.gethostname():
            return False
        if self.boot_id and _boot_id() and self.boot_id != _boot_id():
            return True
        if not _alive(self.pid):
            return True
        ticks = _start_ticks(self.pid)
        return self.start_ticks >= 0 and ticks >= 0 and ticks != self.start_ticks


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OverflowError:
        return False
    return True


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat (after the parenthesised command name); -1 if unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return int(text.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return -1


def _read_holder(path: Path) -> Holder | None:
    """The holder recorded in a lock file; None when it is empty or not ours (being written,
    or garbage)."""
    try:
        with open(path, "rb") as f:  # a regular file: we create it, never a FIFO
            data = json.loads(f.read(65536))
        fields = {k: data[k] for k in ("pid", "host", "started", "command")}
        extra = {k: data[k] for k in ("boot_id", "start_ticks") if k in data}
        holder = Holder(**fields, **extra)
        return holder if isinstance(holder.pid, int) and isinstance(holder.host, str) else None
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return None


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


class StoreLock:
    """Hold `<store>.lock` for a `with` block; see the module docstring for what it promises.

    `wait`: when another live process holds it, poll every `poll_s` seconds until it is free
    (`on_note` is told once) instead of raising StoreError.
    """

    def __init__(
        self,
        store: Path,
        *,
        command: str,
        wait: bool = False,
        poll_s: float = 1.0,
        on_note: Callable[[str], None] = lambda text: None,
    ):
        self.store, self.path = Path(store), lock_path(Path(store))
        self.me = Holder.me(command)
        self.wait, self.poll_s, self.on_note = wait, poll_s, on_note

    def __enter__(self) -> StoreLock:
        ensure_folder(self.path.parent, what="store")
        told = False
        while not self._try_create():
            holder = _read_holder(self.path)
            if self._stale(holder):
                self._break(holder)
                continue
            if not self.wait:
                raise StoreError(self._busy(holder))
            if not told:
                self.on_note(self._busy(holder, waiting=True))
                told = True
            time.sleep(self.poll_s)
        return self

    def __exit__(self, *exc: Any) -> None:
        if _read_holder(self.path) == self.me:  # never remove a lock someone else holds now
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as e:
            raise output_error(self.path, "lock file", e) from None
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self.me), f)
            f.flush()
            os.fsync(f.fileno())
        return True

    def _stale(self, holder: Holder | None) -> bool:
        if holder is None:  # being written this instant, or garbage left long ago
            return _age_s(self.path) > STALE_UNREADABLE_S
        return holder.gone()

    def _break(self, holder: Holder | None) -> None:
        """Remove a stale lock, one breaker at a time (a second O_EXCL file), so two processes
        that both found it stale cannot remove each other's fresh lock."""
        breaker = self.path.with_name(self.path.name + ".break")
        try:
            fd = os.open(breaker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if self._stale(_read_holder(breaker)):  # a breaker that died mid-way
                with contextlib.suppress(OSError):
                    breaker.unlink()
            time.sleep(0.05)
            return
        except OSError as e:
            raise output_error(breaker, "lock file", e) from None
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self.me), f)
        try:
            if _read_holder(self.path) == holder:  # still the stale one
                self.path.unlink(missing_ok=True)
                who = holder.describe() if holder else "an unreadable holder"
                self.on_note(f"took over the lock {self.path} of {who}: no longer running")
        finally:
            with contextlib.suppress(OSError):
                breaker.unlink()

    def _busy(self, holder: Holder | None, *, waiting: bool = False) -> str:
        who = holder.describe() if holder else "a process that has not written its name yet"
        head = f"store {self.store} is being written by another landscape process: {who}"
        if waiting:
            return f"{head}; waiting for it to finish"
        remote = holder is not None and holder.host != self.me.host
        gone = (
            f"if that process is gone (its host {holder.host} cannot be checked from here), "
            if remote and holder
            else "if that process is gone, "
        )
        return (
            f"{head}. Wait for it to finish, or pass --wait to wait here; {gone}remove the lock "
            f"file {self.path} (landscape created it; it holds only that process's name)"
        )


@contextlib.contextmanager
def store_lock(
    store: Path, *, command: str, wait: bool = False, on_note: Callable[[str], None] | None = None
) -> Iterator[StoreLock]:
    """`with store_lock(path, command="landscape train"):` — see `StoreLock`."""
    with StoreLock(store, command=command, wait=wait, on_note=on_note or (lambda t: None)) as lk:
        yield lk
