"""The one validating HDF5 reader both stores go through.

A store file may be damaged (bit flips, truncation, a deleted or retyped object, a garbled
attribute), replaced by something that is not a file (a FIFO would block `open` forever), or
point out of the store (a symbolic link, an HDF5 external link, external raw data). Every read
here checks before it touches data, so that each of these ends in a `StoreError` that names the
file, the object, what was expected and what was found, never in a traceback, a hang or a huge
allocation:

- `open_h5`: regular files only (`os.stat` before opening); a symbolic link must stay inside
  the store's folder; global heaps sane (`landscape.store.h5files`, before HDF5 opens it);
- `H5.node`: hard links only, so no external link or soft link is ever followed;
- `H5.array`: dtype kind, rank and shape checked against what the caller expects, and the size
  it declares against the bytes the file holds for it and against `max_array_bytes()`, before
  reading; external or virtual raw data refused; optionally every value finite;
- `H5.attr` / `H5.json_attr`: type, choices and JSON parsed and checked.

>>> from pathlib import Path
>>> try:
...     with open_h5(Path("/nonexistent.h5"), what="train store"):
...         pass
... except StoreError as e:
...     print(str(e)[:41])
train store /nonexistent.h5: no such file
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from landscape.errors import StoreError
from landscape.store.h5files import check_global_heaps, check_regular

# What h5py, numpy and json raise on a damaged file; each becomes a StoreError naming it.
# (json.JSONDecodeError and UnicodeDecodeError are ValueErrors; RecursionError, raised by
# json on absurd nesting, is a RuntimeError.)
DAMAGE: tuple[type[BaseException], ...] = (
    OSError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    RuntimeError,
    OverflowError,
)

# deflate cannot compress better than about 1032:1, so a gzip dataset that declares more than
# this many times the bytes it holds cannot be real data (it would be read as fill values)
_MAX_DEFLATE_RATIO = 1100
_MAX_ATTR_BYTES = 16 * 2**20  # the largest attribute a store writes is a few kB of JSON
_RUN_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[0-9]+")


def max_array_bytes() -> int:
    """The most bytes one array read may take: `$LANDSCAPE_MAX_ARRAY_BYTES`, else half the RAM.

    A backstop: shapes are first checked against the layout and the bytes present in the file.
    """
    env = os.environ.get("LANDSCAPE_MAX_ARRAY_BYTES", "")
    return int(env) if env.isdigit() else _half_ram()


@functools.cache
def _half_ram() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def check_run_id(run_id: Any, where: str) -> str:
    """A run id as read from a store: `<mode>-<k>`, so never a path separator or `..`."""
    if isinstance(run_id, str) and _RUN_ID.fullmatch(run_id):
        return run_id
    raise StoreError(
        f"{where}: expected a run id like 'normal-000' (letters, digits, one '-<number>'), "
        f"found {str(run_id)[:80]!r}; the index is damaged: re-run `landscape train` with the "
        "same settings to rewrite it"
    )


@contextlib.contextmanager
def open_h5(path: Path, *, what: str, inside: Path | None = None) -> Iterator[H5]:
    """Open a store file for reading, checked first to be a regular file (see `check_regular`).

    Any damage h5py or numpy report while the file is open becomes a StoreError naming it.
    """
    check_regular(path, what=what, inside=inside)
    check_global_heaps(path, what=what)
    try:
        f = h5py.File(path, "r")
    except DAMAGE as e:
        raise StoreError(
            f"{what} {path}: not a readable HDF5 file (expected one; HDF5 cannot read it: "
            f"{_say(e)}); it may be truncated or damaged"
        ) from None
    try:
        with f:
            h5 = H5(f, Path(path), what)
            h5.check_manifest()
            yield h5
    except StoreError:
        raise
    except DAMAGE as e:
        raise StoreError(f"{what} {path}: damaged ({_say(e)})") from None


def _say(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    if "filter returned failure during read" in text:  # Fletcher-32 (h5write.array)
        text = "its checksum does not match its data: the bytes on disk were damaged"
    return text if len(text) < 300 else text[:300] + "..."


# the root attribute where a writer lists every array it wrote (landscape.store.h5write)
MANIFEST = "landscape_arrays"


class H5:
    """One open store file: checked access to its objects, attributes and arrays."""

    def __init__(self, f: h5py.File, path: Path, what: str):
        self.f, self.path, self.what = f, path, what
        self._nodes: dict[str, Any] = {}  # reached once, checked once
        self._attrs: dict[str, dict[str, Any]] = {}

    def error(self, obj: str, expected: str, found: str) -> StoreError:
        return StoreError(f"{self.what} {self.path}, {obj}: expected {expected}, found {found}")

    @contextlib.contextmanager
    def guard(self, obj: str, expected: str) -> Iterator[None]:
        """Any damage raised while reading `obj` becomes a StoreError naming it."""
        try:
            yield
        except StoreError:
            raise
        except DAMAGE as e:
            raise self.error(obj, expected, f"an unreadable object ({_say(e)})") from None

    def node(self, name: str) -> h5py.Group | h5py.Dataset:
        """The object at `name` ("/" or "a/b"), reached through hard links only."""
        obj: Any = self.f
        walked = ""
        for part in [p for p in name.split("/") if p]:
            walked += "/" + part
            if walked in self._nodes:
                obj = self._nodes[walked]
                continue
            with self.guard(walked, "an object stored in this file"):
                if not isinstance(obj, h5py.Group):
                    raise self.error(walked, "a group holding it", "a dataset")
                link = obj.get(part, getlink=True)
                if link is None:
                    raise self.error(walked, "an object of that name", "none")
                if not isinstance(link, h5py.HardLink):
                    raise self.error(walked, "an object stored in this file", _link_text(link))
                obj = self._nodes[walked] = obj[part]
        return obj

    def has(self, name: str) -> bool:
        """Whether `name` is linked (any kind of link) in its parent group."""
        parent, _, leaf = name.strip("/").rpartition("/")
        group = self.group(parent or "/")
        with self.guard(name, "a readable link"):
            return group.get(leaf, getlink=True) is not None

    def group(self, name: str) -> h5py.Group:
        obj = self.node(name)
        if not isinstance(obj, h5py.Group):
            raise self.error(name, "a group", _kind_text(obj))
        return obj

    def keys(self, name: str) -> list[str]:
        """Names of the links in group `name`, sorted."""
        group = self.group(name)
        with self.guard(name, "a readable group"):
            return sorted(str(k) for k in group)

    # -- attributes ---------------------------------------------------------------------------

    def attr_names(self, obj: str = "/") -> list[str]:
        node = self.node(obj)
        with self.guard(f"{obj} attributes", "readable attributes"):
            return sorted(str(k) for k in node.attrs)

    def attr(self, name: str, kind: type | tuple[type, ...], obj: str = "/", **check: Any) -> Any:
        """Attribute `name` of `obj` as a plain Python value of `kind` (str, int, float, bool).

        `choices=...` restricts it to those values; `default=...` is returned when absent.
        """
        where = f"attribute {name!r} of {obj}"
        attrs = self.attrs(obj)
        if name not in attrs:
            if "default" in check:
                return check["default"]
            raise self.error(where, f"a {_kinds(kind)}", "none")
        value = attrs[name]
        if not _is_kind(value, kind):
            raise self.error(where, f"a {_kinds(kind)}", _short(value))
        choices = check.get("choices")
        if choices is not None and value not in choices:
            raise self.error(where, f"one of {', '.join(map(repr, choices))}", _short(value))
        return value

    def json_attr(self, name: str, kind: type, obj: str = "/", **check: Any) -> Any:
        """Attribute `name` holding JSON text, parsed and checked to be a `kind` (dict, list)."""
        where = f"attribute {name!r} of {obj}"
        if "default" in check and name not in self.attrs(obj):
            return check["default"]
        text = self.attr(name, str, obj)
        try:
            value = json.loads(text)
        except DAMAGE as e:
            raise self.error(where, "JSON text", f"text JSON cannot parse ({_say(e)})") from None
        if not isinstance(value, kind):
            raise self.error(where, f"a JSON {kind.__name__}", _short(value))
        return value

    def attrs(self, obj: str = "/") -> dict[str, Any]:
        """Every attribute of `obj` as plain values (str, int, float, bool, or a list of them);
        the dimension-scale bookkeeping attributes are left out. Read once per object."""
        if obj in self._attrs:
            return dict(self._attrs[obj])
        manager = self.node(obj).attrs
        out = {}
        for name in self.attr_names(obj):
            if name in ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", MANIFEST):
                continue
            where = f"attribute {name!r} of {obj}"
            with self.guard(where, "a plain value"):
                out[name] = self._plain(manager, name, where)
        self._attrs[obj] = out
        return dict(out)

    def _plain(self, manager: h5py.AttributeManager, name: str, where: str) -> Any:
        aid = manager.get_id(name)
        if aid.get_storage_size() > _MAX_ATTR_BYTES:
            raise self.error(where, f"at most {_MAX_ATTR_BYTES} bytes", "more")
        if aid.dtype.kind not in "biufSOU" or h5py.check_dtype(ref=aid.dtype) is not None:
            raise self.error(where, "a number or text", f"an attribute of type {aid.dtype}")
        return plain(manager[name])

    def check_manifest(self) -> None:
        """Every array the file's writer listed (`h5write.MANIFEST`) is still there: a deleted
        array is damage, not an optional array left out. Files without the list pass."""
        if MANIFEST not in self.attr_names("/"):
            return
        where = f"attribute {MANIFEST!r} of /"
        with self.guard(where, "JSON text"):
            text = self._plain(self.f.attrs, MANIFEST, where)
        if not isinstance(text, str):
            raise self.error(where, "JSON text", _short(text))
        try:
            names = json.loads(text)
        except DAMAGE as e:
            raise self.error(where, "JSON text", f"text JSON cannot parse ({_say(e)})") from None
        if not isinstance(names, list):
            raise self.error(where, "a JSON list", _short(names))
        for name in names:
            if not isinstance(name, str):
                raise self.error(f"attribute {MANIFEST!r}", "array names", _short(name))
            self.dataset(name)

    # -- arrays ---------------------------------------------------------------------------------

    def dataset(self, name: str) -> h5py.Dataset:
        obj = self.node(name)
        if not isinstance(obj, h5py.Dataset):
            raise self.error(name, "a dataset", _kind_text(obj))
        return obj

    def shape(self, name: str, kind: str, ndim: int | None = None) -> tuple[int, ...]:
        """The shape of dataset `name`, checked (dtype kind, rank, bytes) without reading it.

        `kind` is a string of numpy dtype kinds allowed: "f" floats, "iu" integers, "fiub"
        numbers, "T" text.
        """
        ds = self.dataset(name)
        with self.guard(name, f"a {ndim or 'N'}-d array of kind {kind!r}"):
            shape = tuple(int(n) for n in ds.shape) if ds.shape is not None else None
            self._check_type(ds, name, kind)
            if shape is None or (ndim is not None and len(shape) != ndim):
                found = "no shape" if shape is None else f"shape {shape}"
                raise self.error(name, f"a {ndim}-d array", found)
            self._check_storage(ds, name, shape)
        return shape

    def array(
        self,
        name: str,
        kind: str,
        shape: tuple[int | None, ...],
        *,
        finite: bool = False,
    ) -> np.ndarray:
        """Dataset `name` read after checking it (see `shape`) against `shape` (None: any
        length on that axis); `finite` also requires every value to be finite."""
        found = self.shape(name, kind, len(shape))
        if any(want is not None and want != got for want, got in zip(shape, found, strict=True)):
            wanted = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise self.error(name, f"shape {wanted}", f"shape {found}")
        with self.guard(name, "a readable array"):
            values = self.dataset(name)[()]
            if kind == "T":
                values = np.array([plain(v) for v in np.ravel(values)], dtype=object)
                values = values.reshape(found)
        if finite and not np.isfinite(values).all():
            bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
            raise self.error(name, "finite values", f"{bad} NaN or infinite value(s)")
        return values

    def _check_type(self, ds: h5py.Dataset, name: str, kind: str) -> None:
        dtype = ds.dtype
        if kind == "T":
            ok = h5py.check_string_dtype(dtype) is not None or dtype.kind == "S"
        else:
            ok = dtype.kind in kind and dtype.names is None and dtype.shape == ()
        if not ok:
            raise self.error(name, f"a {_dtype_text(kind)} array", f"dtype {dtype}")

    def _check_storage(self, ds: h5py.Dataset, name: str, shape: tuple[int, ...]) -> None:
        """Refuse raw data outside this file, and a declared size the file cannot hold."""
        dcpl = ds.id.get_create_plist()
        if dcpl.get_layout() == h5py.h5d.VIRTUAL or dcpl.get_external_count() > 0:
            raise self.error(name, "data stored in this file", "raw data in other files")
        nbytes = math.prod(shape) * max(ds.dtype.itemsize, 1)
        if nbytes > max_array_bytes():
            raise self.error(
                name,
                f"an array of at most {max_array_bytes()} bytes (LANDSCAPE_MAX_ARRAY_BYTES)",
                f"shape {shape}: {nbytes} bytes",
            )
        held = ds.id.get_storage_size()
        ratio = _MAX_DEFLATE_RATIO if dcpl.get_nfilters() else 1
        if nbytes > held * ratio and h5py.check_string_dtype(ds.dtype) is None:
            raise self.error(
                name, f"the {nbytes} bytes its shape {shape} declares", f"{held} bytes in the file"
            )


def plain(value: Any) -> Any:
    """An HDF5 attribute or element as plain Python: str, int, float, bool, or a list."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()] if value.ndim else plain(value[()])
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_kind(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # True is no number here
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


def _kinds(kind: type | tuple[type, ...]) -> str:
    names = {str: "text", int: "integer", float: "number", bool: "boolean"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _dtype_text(kind: str) -> str:
    if kind == "T":
        return "text"
    names = {"f": "float", "i": "integer", "u": "unsigned integer", "b": "boolean"}
    return "/".join(names[k] for k in kind)


def _short(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 80 else text[:80] + '...'}"


def _kind_text(obj: Any) -> str:
    return "a group" if isinstance(obj, h5py.Group) else "a dataset"


def _link_text(link: Any) -> str:
    if isinstance(link, h5py.ExternalLink):
        return f"an external link to {link.filename}:{link.path}"
    if isinstance(link, h5py.SoftLink):
        return f"a soft link to {link.path}"
    return f"a link of type {type(link).__name__}"
