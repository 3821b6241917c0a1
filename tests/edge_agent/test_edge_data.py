"""Dataset loaders against the real files in ../shared/data (skipped only where absent)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from edge_agent.data import (
    DATA_DIR_ENV,
    DatasetError,
    load_dataset,
    load_raw,
    resolve_data_dir,
)
from edge_agent.data import datasets as ds_mod


def _data_dir_or_skip() -> Path:
    try:
        return resolve_data_dir()
    except DatasetError as err:
        pytest.skip(f"shared datasets absent: {err}")


def test_mnist_train_and_test_shapes_dtypes_and_normalisation() -> None:
    _data_dir_or_skip()
    train = load_dataset("mnist", "train")
    test = load_dataset("mnist", "test")
    assert train.x.shape == (60000, 1, 28, 28)
    assert test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == np.float32
    assert train.y.dtype == np.int64
    assert set(np.unique(train.y)) == set(range(10))
    assert abs(float(train.x.mean())) < 0.01
    assert abs(float(train.x.std()) - 1.0) < 0.01
    # the canonical first training label of MNIST is a 5, the first test label a 7
    assert int(train.y[0]) == 5
    assert int(test.y[0]) == 7


def test_indices_select_samples_and_keep_labels() -> None:
    _data_dir_or_skip()
    full = load_dataset("mnist", "test")
    idx = np.array([3, 1, 4, 1000])
    part = load_dataset("mnist", "test", indices=idx)
    assert np.array_equal(part.y, full.y[idx])
    assert np.array_equal(part.x, full.x[idx])
    assert len(part) == 4
    assert part.num_classes == 10


def test_cache_is_written_and_then_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _data_dir_or_skip()
    images, labels = load_raw("mnist", "test", cache_dir=tmp_path)
    cached = list(tmp_path.glob("mnist-test-*.npz"))
    assert len(cached) == 1

    def _no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(ds_mod, "_decode_mnist", _no_decode)
    images2, labels2 = load_raw("mnist", "test", cache_dir=tmp_path)
    assert np.array_equal(images, images2)
    assert np.array_equal(labels, labels2)


def test_cifar10_test_split_holds_first_1000_images() -> None:
    folder = _data_dir_or_skip() / "cifar10"
    if not (folder / "test_batch_first1000.xz").is_file():
        pytest.skip(f"{folder}/test_batch_first1000.xz absent")
    test = load_dataset("cifar10", "test", use_cache=False)
    assert test.x.shape == (1000, 3, 32, 32)
    assert test.x.dtype == np.float32
    assert np.array_equal(test.y, np.load(folder / "test_labels_all10000_genuine.npy")[:1000])


def test_missing_folder_error_names_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere"
    monkeypatch.setenv(DATA_DIR_ENV, str(missing))
    with pytest.raises(DatasetError, match=re.escape(str(missing))):
        load_dataset("mnist", "test")


def test_env_var_and_corrupt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        with gzip.open(mnist / name, "wb") as fh:
            fh.write(b"\x00\x00\x08\x99garbage")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(DatasetError, match=re.escape("t10k-images-idx3-ubyte.gz")):
        load_raw("mnist", "test", use_cache=False)


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="`name`"):
        load_raw("imagenet")
    with pytest.raises(ValueError, match="`split`"):
        load_raw("mnist", "valid")
