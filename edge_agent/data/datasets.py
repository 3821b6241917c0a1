"""Loaders for the offline datasets in ``../shared/data`` (see its README).

MNIST comes as the four original gzip-compressed IDX files, CIFAR-10 as xz-compressed
"python version" pickles (our own loader: the files lack the ``filenames`` key, so torchvision
would refuse them). Decoded images are cached as uncompressed ``.npz`` files of uint8 pixels, so
the many agent processes of an experiment start in a fraction of a second.

Arrays handed out:

- ``x : [N, C, H, W], float32``: pixels scaled to [0, 1] and normalised per channel with the
  usual training-set mean and standard deviation (:data:`NORMALISATION`);
- ``y : [N], int64``: class labels 0..9.

``wifi`` is the wireless-trace task of :mod:`edge_agent.data.wifi` (the CRAWDAD rutgers/noise
traces): ``x : [N, 1, 4, 4] float32`` features of the last windows of a link (already scaled,
not pixels), ``y`` one of its four link states.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import lzma
import os
import pickle
import struct
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from edge_agent.data import wifi

__all__ = [
    "CACHE_DIR_ENV",
    "DATASET_NAMES",
    "DATA_DIR_ENV",
    "FOLDERS",
    "NORMALISATION",
    "NUM_CLASSES",
    "ArrayDataset",
    "DatasetError",
    "load_dataset",
    "load_raw",
    "normalise",
    "resolve_cache_dir",
    "resolve_data_dir",
]

_log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: Environment variable naming the dataset folder (the one holding ``mnist/`` and ``cifar10/``).
DATA_DIR_ENV = "TESTBED_DATA_DIR"
#: Environment variable naming the folder for decoded-array caches.
CACHE_DIR_ENV = "TESTBED_CACHE_DIR"

DATASET_NAMES = ("mnist", "cifar10", "wifi")
NUM_CLASSES: Dict[str, int] = {"mnist": 10, "cifar10": 10, "wifi": len(wifi.CLASSES)}
#: Sub-folder of the data directory of each dataset.
FOLDERS: Dict[str, str] = {"mnist": "mnist", "cifar10": "cifar10", "wifi": wifi.FOLDER}

#: Per-channel (mean, std) of the training pixels scaled to [0, 1].
NORMALISATION: Dict[str, Tuple[Tuple[float, ...], Tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}

# Expected (N, C, H, W) of each split; CIFAR-10's test split holds only the first 1000 images.
_SHAPES: Dict[Tuple[str, str], Tuple[int, int, int, int]] = {
    ("mnist", "train"): (60000, 1, 28, 28),
    ("mnist", "test"): (10000, 1, 28, 28),
    ("cifar10", "train"): (50000, 3, 32, 32),
    ("cifar10", "test"): (1000, 3, 32, 32),
    ("wifi", "train"): (12428, 1, wifi.HISTORY, wifi.FEATURES),
    ("wifi", "test"): (6214, 1, wifi.HISTORY, wifi.FEATURES),
}

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_CIFAR_FILES = {
    "train": tuple(f"data_batch_{i}.xz" for i in range(1, 6)),
    "test": ("test_batch_first1000.xz",),
}
_CACHE_VERSION = 1


class DatasetError(RuntimeError):
    """A dataset folder or file that is missing or malformed; the message names the path."""


@dataclass(frozen=True)
class ArrayDataset:
    """One split of a dataset held in memory.

    Attributes:
        x: ``[N, C, H, W], float32``, normalised pixels.
        y: ``[N], int64``, class labels.
        name: dataset name (``mnist`` or ``cifar10``).
        split: ``train`` or ``test``.
    """

    x: np.ndarray
    y: np.ndarray
    name: str
    split: str

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES[self.name]

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """The samples at ``indices`` (``[M], int``), copied."""
        return ArrayDataset(self.x[indices], self.y[indices], self.name, self.split)


def _default_data_dir() -> Path:
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def resolve_data_dir(path: Optional[PathLike] = None) -> Path:
    """The dataset folder: ``path``, else ``$TESTBED_DATA_DIR``, else ``<repo>/../shared/data``.

    Raises:
        DatasetError: the chosen folder does not exist; the message names it and how to set it.
    """
    if path is not None:
        chosen, how = Path(path), "the `data_dir` argument"
    elif os.environ.get(DATA_DIR_ENV):
        chosen, how = Path(os.environ[DATA_DIR_ENV]), f"${DATA_DIR_ENV}"
    else:
        chosen, how = _default_data_dir(), "the default"
    if not chosen.is_dir():
        raise DatasetError(
            f"dataset folder {chosen} (from {how}) does not exist; expected a folder holding "
            f"mnist/ and cifar10/ as described in ../shared/data/README.md; pass `data_dir` "
            f"or set ${DATA_DIR_ENV}"
        )
    return chosen


def resolve_cache_dir(cache_dir: Optional[PathLike] = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$TESTBED_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/testbed`` (``~/.cache/testbed``). Not created here."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "testbed"


def _require(path: Path) -> Path:
    if not path.is_file():
        raise DatasetError(f"dataset file {path} is missing (see ../shared/data/README.md)")
    return path


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file (big-endian int32 magic and dimensions, then uint8 data) as uint8 array."""
    with gzip.open(_require(path), "rb") as fh:
        raw = fh.read()
    ndim = magic & 0xFF
    if len(raw) < 4 + 4 * ndim or struct.unpack(">i", raw[:4])[0] != magic:
        raise DatasetError(f"{path}: not an IDX file with magic {magic:#010x}")
    dims = struct.unpack(">" + "i" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetError(f"{path}: header says {dims} but holds {data.size} values")
    return data.reshape(dims)


def _decode_mnist(folder: Path, split: str) -> Tuple[np.ndarray, np.ndarray]:
    img_name, lbl_name = _MNIST_FILES[split]
    images = _read_idx(folder / img_name, 0x00000803)
    labels = _read_idx(folder / lbl_name, 0x00000801)
    return images[:, None, :, :], labels.astype(np.int64)


def _read_cifar_pickle(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    with lzma.open(_require(path), "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except KeyError as err:
        raise DatasetError(f"{path}: CIFAR-10 batch without key {err.args[0]!r}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise DatasetError(f"{path}: data {data.shape} and labels {labels.shape} do not match")
    return data.reshape(-1, 3, 32, 32), labels


def _decode_cifar10(folder: Path, split: str) -> Tuple[np.ndarray, np.ndarray]:
    parts = [_read_cifar_pickle(folder / name) for name in _CIFAR_FILES[split]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    genuine = folder / "test_labels_all10000_genuine.npy"
    if split == "test" and genuine.is_file():
        ref = np.load(genuine)[: len(labels)]
        if not np.array_equal(ref, labels):
            raise DatasetError(f"{folder}: test labels disagree with {genuine.name}")
    return images, labels


def _source_files(folder: Path, name: str, split: str) -> List[Path]:
    if name == "wifi":
        return [folder / wifi.ARCHIVE]
    names = _MNIST_FILES[split] if name == "mnist" else _CIFAR_FILES[split]
    return [folder / n for n in names]


def _decode_wifi(folder: Path, split: str) -> Tuple[np.ndarray, np.ndarray]:
    _require(folder / wifi.ARCHIVE)
    try:
        return wifi.decode_wifi(folder, split)
    except (ValueError, OSError, EOFError, tarfile.TarError, lzma.LZMAError) as err:
        raise DatasetError(f"{folder / wifi.ARCHIVE}: {err}") from None


_DECODERS = {"mnist": _decode_mnist, "cifar10": _decode_cifar10, "wifi": _decode_wifi}


def _fingerprint(files: List[Path], extra: str = "") -> str:
    """The cache key of arrays decoded from ``files`` (and ``extra``: how they were decoded)."""
    h = hashlib.sha256(extra.encode())
    for f in files:
        st = _require(f).stat()
        h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def _load_cache(path: Path) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    try:
        with np.load(path) as npz:
            return npz["images"], npz["labels"]
    except (OSError, KeyError, ValueError) as err:
        _log.warning("ignoring unreadable dataset cache %s: %s", path, err)
        return None


def _save_cache(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write atomically (temporary file then rename), so concurrent agents never read half."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=str(path.parent), suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, images=images, labels=labels)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:
        _log.warning("cannot write dataset cache %s: %s", path, err)


def _check_split(name: str, split: str) -> None:
    if name not in DATASET_NAMES:
        raise ValueError(f"`name` must be one of {DATASET_NAMES}, got {name!r}")
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test', got {split!r}")


def load_raw(
    name: str,
    split: str = "train",
    *,
    data_dir: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    use_cache: bool = True,
) -> Tuple[np.ndarray, np.ndarray]:
    """Decoded pixels and labels of one split, through the cache.

    Returns:
        images: ``[N, C, H, W], uint8`` (``wifi``: its float32 features); labels: ``[N], int64``.

    Raises:
        DatasetError: folder or file missing, or contents of the wrong shape.
    """
    _check_split(name, split)
    folder = resolve_data_dir(data_dir) / FOLDERS[name]
    files = _source_files(folder, name, split)
    cache_path = None
    decoded = None
    if use_cache:
        key = _fingerprint(files, repr(wifi.DECODING) if name == "wifi" else "")
        cache_path = resolve_cache_dir(cache_dir) / f"{name}-{split}-v{_CACHE_VERSION}-{key}.npz"
        if cache_path.is_file():
            decoded = _load_cache(cache_path)
    if decoded is None:
        decoded = _DECODERS[name](folder, split)
        if cache_path is not None:
            _save_cache(cache_path, *decoded)
    images, labels = decoded
    expected = _SHAPES[(name, split)]
    if images.shape != expected or labels.shape != (expected[0],):
        raise DatasetError(
            f"{folder}: {split} split has images {images.shape} and labels {labels.shape}, "
            f"expected {expected} and ({expected[0]},)"
        )
    if labels.min() < 0 or labels.max() >= NUM_CLASSES[name]:
        raise DatasetError(f"{folder}: {split} labels outside 0..{NUM_CLASSES[name] - 1}")
    return images, labels.astype(np.int64, copy=False)


def normalise(name: str, images: np.ndarray) -> np.ndarray:
    """``[N, C, H, W] uint8`` pixels to normalised ``float32`` (see :data:`NORMALISATION`);
    ``wifi``'s features are already scaled and are returned as they are."""
    if name not in NORMALISATION:
        return images.astype(np.float32, copy=False)
    mean, std = NORMALISATION[name]
    shape = (1, len(mean), 1, 1)
    x = images.astype(np.float32) * np.float32(1.0 / 255.0)
    x -= np.asarray(mean, dtype=np.float32).reshape(shape)
    x /= np.asarray(std, dtype=np.float32).reshape(shape)
    return x


def load_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    use_cache: bool = True,
    indices: Optional[np.ndarray] = None,
) -> ArrayDataset:
    """One split of ``mnist``, ``cifar10`` or ``wifi``, normalised.

    Args:
        name: ``mnist`` or ``cifar10``.
        split: ``train`` or ``test`` (CIFAR-10 ``test`` holds only the first 1000 images).
        data_dir: folder holding ``mnist/`` and ``cifar10/``; default ``$TESTBED_DATA_DIR``,
            else ``<repo>/../shared/data``.
        cache_dir: where decoded arrays are cached; default ``$TESTBED_CACHE_DIR``, else
            ``~/.cache/testbed``.
        use_cache: read and write the cache.
        indices: ``[M], int``: keep only these samples (e.g. one client's partition); only
            they are converted to float32, which keeps an agent's memory small.
    """
    images, labels = load_raw(
        name, split, data_dir=data_dir, cache_dir=cache_dir, use_cache=use_cache
    )
    if indices is not None:
        images, labels = images[indices], labels[indices]
    return ArrayDataset(normalise(name, images), np.ascontiguousarray(labels), name, split)
