"""The wireless-trace task: its features and labels on a hand-made archive, its time split,
and the real CRAWDAD traces in ../shared/data (skipped only where absent)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from edge_agent.data import DatasetError, load_dataset, load_raw, resolve_data_dir, wifi
from edge_agent.models import build_model
from protocol.spec import DATASET_TRAIN_SIZES


def _link(lost_windows: set[int], rssi: int) -> bytes:
    """One link's file: every frame received at ``rssi`` except in ``lost_windows``."""
    lines = [
        f"{seq} {rssi}"
        for seq in range(wifi.FRAMES)
        if seq // wifi.WINDOW_FRAMES not in lost_windows
    ]
    return ("\n".join(lines) + "\n").encode()


def _archive(folder: Path, links: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / wifi.ARCHIVE, "w:xz") as tar:
        for name, raw in links.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return folder


def test_features_labels_and_time_split_of_a_known_archive(tmp_path: Path) -> None:
    folder = _archive(
        tmp_path / wifi.FOLDER,
        {
            "data/dbm-10/Results_node1-2_x/sdec1-2": _link({5, 8}, rssi=10),
            "data/dbm0/Results_node1-3_x/sdec1-3": _link(set(), rssi=20),
            "data/dbm0/Results_node1-4_x/sdec1-4": _link(set(), rssi=30),
            "data/dbm0/Results_node1-5_x/sdec1-5": b"",  # nothing received: left out
        },
    )
    x, y = wifi.decode_wifi(folder, "train")
    first_test = wifi.WINDOWS - wifi.TEST_WINDOWS
    n_train_targets = first_test - wifi.HISTORY
    assert x.shape == (3 * n_train_targets, 1, wifi.HISTORY, wifi.FEATURES)
    assert x.dtype == np.float32
    assert y.dtype == np.int64
    # Links are sorted by member name; samples are grouped by target window, then link.
    link0 = x[0::3]  # the dbm-10 link
    assert np.allclose(link0[:, 0, :, 3], -10 / 20)  # the injected noise feature
    assert np.allclose(link0[1, 0, :, 0], [1, 1, 1, 1])  # target window 5: history 1..4 clean
    assert y[0::3][1] == 0  # window 5 is lost: an outage
    assert np.allclose(link0[2, 0, -1, 0], 0.0)  # target 6 sees window 5 lost
    assert np.allclose(x[1::3][0, 0, :, 1], 20 / 32)  # mean RSSI feature, scaled
    # Terciles of the live training targets: RSSI 10 weak, 20 fair, 30 strong.
    assert set(y[1::3]) == {2}
    assert set(y[2::3]) == {3}
    xt, yt = wifi.decode_wifi(folder, "test")
    assert xt.shape[0] == 3 * wifi.TEST_WINDOWS
    assert yt[0] == 0  # the dbm-10 link's window 8 is lost: test targets are the last windows


def test_a_malformed_member_is_named(tmp_path: Path) -> None:
    folder = _archive(tmp_path / wifi.FOLDER, {"data/dbm0/R/sdec1-2": b"0 12\n1\n"})
    with pytest.raises(ValueError, match="sdec1-2"):
        wifi.decode_wifi(folder, "train")


def test_a_missing_archive_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=wifi.ARCHIVE):
        load_raw("wifi", "train", data_dir=tmp_path, use_cache=False)


def test_the_real_traces_load_balanced_and_the_model_takes_them() -> None:
    try:
        folder = resolve_data_dir() / wifi.FOLDER
    except DatasetError as err:
        pytest.skip(f"shared datasets absent: {err}")
    if not (folder / wifi.ARCHIVE).is_file():
        pytest.skip(f"{folder / wifi.ARCHIVE} absent")
    train = load_dataset("wifi", "train", use_cache=False)
    test = load_dataset("wifi", "test")
    assert len(train) == DATASET_TRAIN_SIZES["wifi"]
    assert train.num_classes == len(wifi.CLASSES) == 4
    share = np.bincount(train.y, minlength=4) / len(train)
    assert share.min() > 0.1  # no class is rare: a constant guess scores below 30%
    assert len(test) == len(train) // 2  # 2 test targets per link against 4 for training
    logits = build_model("wifi_mlp")(torch.from_numpy(test.x[:8]))
    assert tuple(logits.shape) == (8, 4)


def test_the_rssi_byte_is_signed_and_128_is_an_error() -> None:
    raw = "\n".join(f"{seq} {255 if seq < 15 else (128 if seq < 20 else 3)}" for seq in range(30))
    windows = wifi._link_windows((raw + "\n").encode(), noise_dbm=0.0)
    assert windows is not None
    # Window 0: 15 frames at -1 and 10 at 3 clean, 5 in error (received, not clean).
    assert windows[0, 0] == pytest.approx(25 / 30)  # delivered cleanly
    assert windows[0, 1] == pytest.approx((15 * -1 + 10 * 3) / 25 / 32)  # mean RSSI / 32
    assert windows[0, 4] == pytest.approx(0.0)  # every frame arrived: no loss
    assert windows[1, 4] == pytest.approx(1.0)  # nothing in window 1
