"""MNIST and Fashion-MNIST from their original gzip-compressed IDX files.

Each file is checked by md5 before it is parsed. Two md5s are accepted per file: the one of
the canonical `.gz`, and the one of its decompressed bytes, because repackaged copies (Debian's
`dataset-fashion-mnist` strips the gzip header) differ as `.gz` but hold identical data.

IDX after gunzip: 2 zero bytes, a type byte (0x08 = uint8), a byte n with the number of
dimensions, n big-endian uint32 sizes, then the data row-major. Images have magic 2051 and
dims (N, 28, 28); labels magic 2049 and dims (N,).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landscape.config import DataConfig
from landscape.data.base import Dataset
from landscape.data.download import download_file, md5_bytes
from landscape.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
MAGIC = {r: IMAGES_MAGIC if r.endswith("images") else LABELS_MAGIC for r in ROLES}


@dataclass(frozen=True)
class IdxFile:
    name: str  # file name, e.g. "train-images-idx3-ubyte.gz"
    gz_md5: str  # md5 of the canonical .gz
    raw_md5: str  # md5 of the decompressed bytes (accepts re-compressed copies)


@dataclass(frozen=True)
class IdxSource:
    name: str  # registry name
    title: str
    subdir: str  # looked for in <data_dir>/<subdir>/ first, then <data_dir>/
    system_dirs: tuple[Path, ...]  # read-only places a system package may install them
    url: str  # base URL the files are downloaded from
    files: dict[str, IdxFile]  # role (see ROLES) -> file
    class_names: tuple[str, ...]


def _files(gz: tuple[str, str, str, str], raw: tuple[str, str, str, str]) -> dict[str, IdxFile]:
    names = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    return {r: IdxFile(n, g, w) for r, n, g, w in zip(ROLES, names, gz, raw, strict=True)}


# Raw md5s were computed from the decompressed canonical files (MNIST: the shared copies whose
# .gz md5s match; Fashion-MNIST: Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1).
MNIST = IdxSource(
    name="mnist",
    title="MNIST",
    subdir="mnist",
    system_dirs=(),
    url="https://ossci-datasets.s3.amazonaws.com/mnist/",
    files=_files(
        gz=(
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
        raw=(
            "6bbc9ace898e44ae57da46a324031adb",
            "a25bea736e30d166cdddb491f175f624",
            "2646ac647ad5339dbf082846283269ea",
            "27ae3e4e09519cfbb04c329615203637",
        ),
    ),
    class_names=tuple(str(d) for d in range(10)),
)

FASHION_MNIST = IdxSource(
    name="fashion-mnist",
    title="Fashion-MNIST",
    subdir="fashion-mnist",
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    files=_files(
        gz=(
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
        raw=(
            "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "9018921c3c673c538a1fc5bad174d6f9",
            "8181f5470baa50b63fa0f6fddb340f0a",
            "15d484375f8d13e6eb1aabb0c3f46965",
        ),
    ),
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)


def load_mnist(cfg: DataConfig, data_dir: Path, offline: bool) -> Dataset:
    """MNIST: x (n, 1, 28, 28) float32 in [0, 1], y (n,) int64; 60,000 train, 10,000 test."""
    return load_idx_dataset(MNIST, data_dir, offline=offline)


def load_fashion_mnist(cfg: DataConfig, data_dir: Path, offline: bool) -> Dataset:
    """Fashion-MNIST: same shapes as MNIST, 10 clothing classes."""
    return load_idx_dataset(FASHION_MNIST, data_dir, offline=offline)


def load_idx_dataset(src: IdxSource, data_dir: Path, *, offline: bool) -> Dataset:
    """Find (or download) the four files of `src`, check their md5s and parse them."""
    folder = locate(src, data_dir, offline=offline)
    paths = {role: folder / f.name for role, f in src.files.items()}
    arrays = {
        role: read_idx(paths[role], src.files[role], src.title, magic=MAGIC[role]) for role in ROLES
    }
    x_train, y_train = _as_xy(arrays["train_images"], arrays["train_labels"], paths, src)
    x_test, y_test = _as_xy(arrays["test_images"], arrays["test_labels"], paths, src)
    return Dataset(
        name=src.name,
        title=src.title,
        task="classification",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_outputs=len(src.class_names),
        class_names=src.class_names,
        source=", ".join(str(paths[r]) for r in ROLES),
    )


def search_dirs(src: IdxSource, data_dir: Path) -> list[Path]:
    """Folders searched, in order: <data_dir>/<subdir>/, <data_dir>/, then system folders."""
    return [data_dir / src.subdir, data_dir, *src.system_dirs]


def locate(src: IdxSource, data_dir: Path, *, offline: bool) -> Path:
    """The first folder holding all four files; downloads the missing ones when allowed."""
    dirs = search_dirs(src, data_dir)
    for d in dirs:
        if all((d / f.name).is_file() for f in src.files.values()):
            return d
    target = dirs[0]
    names = [f.name for f in src.files.values()]
    if offline:
        raise DataError(
            f"{src.title} not found (offline): looked for {', '.join(names)} in "
            f"{', '.join(str(d) for d in dirs)}; run without --offline to download them from "
            f"{src.url} into {target}, or copy the four files there (see data/README.md)"
        )
    for f in src.files.values():
        if not (target / f.name).is_file():
            download_file(src.url + f.name, target / f.name, f.gz_md5)
    return target


def read_idx(path: Path, spec: IdxFile, title: str, *, magic: int) -> np.ndarray:
    """Check `path` against the md5s of `spec`, then parse it into a uint8 array."""
    return parse_idx(verified_bytes(path, spec, title), path, magic=magic)


def verified_bytes(path: Path, spec: IdxFile, title: str) -> bytes:
    """The decompressed bytes of `path`, if its .gz md5 or its decompressed md5 is known."""
    packed = path.read_bytes()
    gz_md5 = md5_bytes(packed)
    try:
        raw = gzip.decompress(packed)
    except (OSError, EOFError, zlib.error) as e:  # not gzip, truncated, corrupt stream
        raw, raw_md5 = b"", f"none (not a readable gzip file: {e})"
    else:
        raw_md5 = md5_bytes(raw)
    if spec.gz_md5 == gz_md5 or spec.raw_md5 == raw_md5:
        return raw
    raise DataError(
        f"{title} file {path}: md5 mismatch: expected {spec.gz_md5} (.gz) or {spec.raw_md5} "
        f"(decompressed), found {gz_md5} (.gz) and {raw_md5} (decompressed). The file is "
        "corrupt or a different file: delete it so it is downloaded again, or put a correct "
        "copy there and run with --offline"
    )


def parse_idx(raw: bytes, path: Path, *, magic: int) -> np.ndarray:
    """Parse decompressed IDX bytes into a uint8 array of the stated dims.

    `magic` is the expected first 4 bytes as a big-endian integer: 2051 for images
    (0x00000803: ubyte, 3 dims), 2049 for labels (0x00000801: ubyte, 1 dim).
    """
    found = int.from_bytes(raw[:4], "big")
    if len(raw) < 4 or found != magic:
        raise DataError(
            f"IDX file {path}: expected magic number {magic} (bytes {magic:08x}), found "
            f"{raw[:4].hex()}; this is not the expected IDX file"
        )
    ndim = raw[3]
    offset = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if len(raw) - offset != int(np.prod(dims)):
        raise DataError(
            f"IDX file {path}: dims {dims} need {int(np.prod(dims))} data bytes, "
            f"found {len(raw) - offset}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _as_xy(
    images: np.ndarray, labels: np.ndarray, paths: dict[str, Path], src: IdxSource
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 images and (N,) labels -> x (N, 1, 28, 28) float32 /255, y int64."""
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise DataError(
            f"{src.title} in {paths['train_images'].parent}: expected images (N, 28, 28) and "
            f"labels (N,), found {images.shape} and {labels.shape}"
        )
    x = images.astype(np.float32)[:, None]  # (N, 1, 28, 28)
    x /= 255.0  # in place: MNIST's training set is 188 MB as float32
    return x, labels.astype(np.int64)
