"""CIFAR-10 from the binary distribution or from a folder of images; never the pickled one.

Forms, looked for in `<data_dir>/cifar10/`, `<data_dir>/cifar10_jpg/`, then `<data_dir>/`, and
within each folder in this order:

1. `cifar-10-batches-bin/` (data_batch_1..5.bin, test_batch.bin): records of 1 label byte and
   3,072 pixel bytes in (C, H, W) order, 10,000 records per file;
2. `cifar-10-binary.tar.gz`, md5-checked and read without extracting it;
3. an image folder `<root>/{train,test}/<class>/*.png|jpg`, decoded with Pillow; the label is
   the index of the class folder's name in `CLASSES`. JPEG copies are lossy, so a dataset
   read from JPEGs is titled "CIFAR-10 (JPEG subset)", never "CIFAR-10".

The binary tarball is downloaded only when no form is found and `offline` is False.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

from landscape.config import DataConfig
from landscape.data.base import Dataset
from landscape.data.download import download_file, md5_bytes, md5_file
from landscape.errors import DataError

CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
TARBALL = "cifar-10-binary.tar.gz"
TARBALL_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
BIN_DIR = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
RECORD_BYTES = 1 + 3 * 32 * 32  # label byte + (3, 32, 32) pixels
RECORDS_PER_FILE = 10_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
JPEG_SUFFIXES = (".jpg", ".jpeg")


def load_cifar10(cfg: DataConfig, data_dir: Path, offline: bool) -> Dataset:
    """CIFAR-10: x (n, 3, 32, 32) float32 in [0, 1], y (n,) int64 in 0..9."""
    for root in search_dirs(data_dir):
        if all((root / BIN_DIR / f).is_file() for f in TRAIN_FILES + TEST_FILES):
            return _from_bin_folder(root / BIN_DIR)
        if (root / TARBALL).is_file():
            return _from_tarball(root / TARBALL)
        if (root / "train").is_dir() and (root / "test").is_dir():
            return load_image_folder(root)
    return _from_tarball(_fetch_tarball(data_dir, offline=offline))


def search_dirs(data_dir: Path) -> list[Path]:
    """Folders searched, in order."""
    return [data_dir / "cifar10", data_dir / "cifar10_jpg", data_dir]


def _fetch_tarball(data_dir: Path, *, offline: bool) -> Path:
    target = data_dir / "cifar10" / TARBALL
    if offline:
        dirs = ", ".join(str(d) for d in search_dirs(data_dir))
        raise DataError(
            f"CIFAR-10 not found (offline): looked in {dirs} for {BIN_DIR}/, {TARBALL} or an "
            f"image folder train/<class>/, test/<class>/; run without --offline to download "
            f"{URL} to {target}, or put one of those forms there (see data/README.md)"
        )
    return download_file(URL, target, TARBALL_MD5)


def _from_bin_folder(folder: Path) -> Dataset:
    """Read the extracted binary batches (sizes checked; the tarball's md5 is not available)."""
    train = [_parse_batch((folder / f).read_bytes(), folder / f) for f in TRAIN_FILES]
    test = [_parse_batch((folder / f).read_bytes(), folder / f) for f in TEST_FILES]
    return _dataset(*_stack(train), *_stack(test), title="CIFAR-10", source=str(folder))


def _from_tarball(path: Path) -> Dataset:
    """Read the batches straight out of the md5-checked tarball (nothing is extracted)."""
    found = md5_file(path)
    if found != TARBALL_MD5:
        raise DataError(
            f"CIFAR-10 file {path}: md5 mismatch, expected {TARBALL_MD5}, found {found}; "
            "delete it so it is downloaded again, or put a correct copy there and run with "
            "--offline"
        )
    with tarfile.open(path, "r:gz") as tar:
        batches = {
            f: _parse_batch(_member(tar, f, path), path / f) for f in TRAIN_FILES + TEST_FILES
        }
    train = _stack([batches[f] for f in TRAIN_FILES])
    test = _stack([batches[f] for f in TEST_FILES])
    return _dataset(*train, *test, title="CIFAR-10", source=str(path))


def _member(tar: tarfile.TarFile, name: str, path: Path) -> bytes:
    try:
        f = tar.extractfile(f"{BIN_DIR}/{name}")
    except KeyError:
        f = None
    if f is None:
        raise DataError(f"CIFAR-10 file {path}: expected a member {BIN_DIR}/{name}, found none")
    return f.read()


def _parse_batch(data: bytes, where: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> images (n, 3, 32, 32) uint8 and labels (n,) uint8."""
    if len(data) != RECORDS_PER_FILE * RECORD_BYTES:
        raise DataError(
            f"CIFAR-10 file {where}: expected {RECORDS_PER_FILE * RECORD_BYTES} bytes "
            f"({RECORDS_PER_FILE} records of {RECORD_BYTES}), found {len(data)}; the file is "
            "truncated or not a CIFAR-10 binary batch"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0]


def _stack(batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def load_image_folder(root: Path) -> Dataset:
    """Read `<root>/train/<class>/*` and `<root>/test/<class>/*` (PNG or JPEG, 32x32 RGB).

    If `<root>/MD5SUMS` exists (lines "md5  relative/path"), every image is checked against it.
    """
    md5s = _read_md5sums(root / "MD5SUMS")
    x_train, y_train, train_files = _read_split(root, "train", md5s)
    x_test, y_test, test_files = _read_split(root, "test", md5s)
    suffixes = {p.suffix.lower() for p in train_files + test_files}
    lossy = bool(suffixes & set(JPEG_SUFFIXES))
    title = "CIFAR-10 (JPEG subset)" if lossy else "CIFAR-10 (image folder)"
    return _dataset(x_train, y_train, x_test, y_test, title=title, source=f"image folder {root}")


def _read_split(
    root: Path, split: str, md5s: dict[str, str]
) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Images (n, 3, 32, 32) uint8, labels (n,) uint8 and the files, in sorted path order."""
    files = sorted(p for p in (root / split).glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(
            f"CIFAR-10 image folder {root / split}: expected images in <class>/*.png|jpg, "
            f"found none"
        )
    labels = np.array([_label(p) for p in files], dtype=np.uint8)
    images = np.stack([_decode(p, root, md5s) for p in files])  # (n, 32, 32, 3)
    return images.transpose(0, 3, 1, 2), labels, files


def _label(path: Path) -> int:
    name = path.parent.name
    if name not in CLASSES:
        raise DataError(
            f"CIFAR-10 image {path}: class folder {name!r} is not a CIFAR-10 class; "
            f"expected one of {', '.join(CLASSES)}"
        )
    return CLASSES.index(name)


def _decode(path: Path, root: Path, md5s: dict[str, str]) -> np.ndarray:
    """One image file -> (32, 32, 3) uint8, md5-checked when MD5SUMS lists it."""
    from PIL import Image  # Pillow is needed only for image folders

    data = path.read_bytes()
    expected = md5s.get(path.relative_to(root).as_posix())
    if expected is not None and md5_bytes(data) != expected:
        raise DataError(
            f"CIFAR-10 image {path}: md5 mismatch, expected {expected} (from MD5SUMS), "
            f"found {md5_bytes(data)}; restore the file from its source"
        )
    with Image.open(io.BytesIO(data)) as im:
        rgb = np.asarray(im.convert("RGB"))
    if rgb.shape != (32, 32, 3):
        raise DataError(f"CIFAR-10 image {path}: expected 32x32 pixels, found {rgb.shape[:2]}")
    return rgb


def _read_md5sums(path: Path) -> dict[str, str]:
    """relative path -> md5 from an md5sum-style file; {} when there is none."""
    if not path.is_file():
        return {}
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {name.strip().lstrip("*"): md5 for md5, name in pairs}


def _dataset(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    title: str,
    source: str,
) -> Dataset:
    """uint8 (n, 3, 32, 32) images and labels -> a Dataset scaled to [0, 1]."""
    return Dataset(
        name="cifar10",
        title=title,
        task="classification",
        x_train=_scale(x_train),
        y_train=y_train.astype(np.int64),
        x_test=_scale(x_test),
        y_test=y_test.astype(np.int64),
        n_outputs=len(CLASSES),
        class_names=CLASSES,
        source=source,
    )


def _scale(images: np.ndarray) -> np.ndarray:
    """uint8 -> C-contiguous float32 in [0, 1] (the image-folder arrays arrive transposed)."""
    x = np.ascontiguousarray(images, dtype=np.float32)
    x /= 255.0
    return x
