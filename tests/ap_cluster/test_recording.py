"""SigMF recordings of the AP flowgraph and their replay through the same estimator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sigmf import sigmffile
from sigmf.validate import validate as sigmf_validate

from ap_cluster.config import cluster_config_from_spec
from ap_cluster.flowgraph import ApFlowgraph
from ap_cluster.recording import (
    RecordingError,
    annotate_rounds,
    replay_source,
    spec_sha256,
    write_collection,
)
from protocol.csi import CSIMessage, encode_csi
from protocol.spec import ExperimentSpec, parse_spec

FRAMES = 1500


def _spec(**record: Any) -> ExperimentSpec:
    return parse_spec(
        {
            "name": "rec",
            "seed": 4,
            "topology": {
                "aps": [{"id": "ap0", "antennas": 2}, {"id": "ap1", "antennas": 1}],
                "ues": [{"id": f"ue{u}", "speed_mps": 5.0} for u in range(3)],
            },
            "radio": {"tau_p": 4, "tau_c": 100, "sample_rate_hz": 1e6},
            "backend": {"kind": "sim", "timing_offset_samples": 17},
            "record": {"enabled": True, **record},
        }
    )


def _run(
    spec: ExperimentSpec, ap: str, *, record: Path | None = None, replay: Path | None = None
) -> tuple[list[CSIMessage], ApFlowgraph]:
    cluster = cluster_config_from_spec(
        spec, pub_base_port=21000, publish_interval_s=0.01, record_dir=record, replay=replay
    ).model_copy(update={"sim_pace": 0.0})
    msgs: list[CSIMessage] = []
    tb = ApFlowgraph(cluster, ap, on_csi=msgs.append, max_frames=FRAMES)
    tb.run()
    if tb.recorder is not None:
        tb.recorder.close()
    return msgs, tb


def test_a_recording_is_valid_sigmf_and_replays_bit_identical_csi(tmp_path: Path) -> None:
    spec = _spec()
    rec = tmp_path / "rec"
    originals = {ap: _run(spec, ap, record=rec)[0] for ap in ("ap0", "ap1")}
    collection = write_collection(rec, spec.name, experiment_id="exp-1")
    rounds = [
        {"index": 0, "started": 1.5, "details": {"csi": {"frames": {"ap0": 400, "ap1": 410}}}},
        {"index": 1, "started": 2.5, "details": {"csi": {"frames": {"ap0": 900}}}},
    ]
    assert annotate_rounds(rec, rounds, experiment_id="exp-1") == 3
    collection = write_collection(rec, spec.name, experiment_id="exp-1")

    for ap, n_ant in (("ap0", 2), ("ap1", 1)):
        meta_path = rec / f"{ap}.sigmf-meta"
        doc = json.loads(meta_path.read_text())
        sigmf_validate(doc)  # the package's schema check
        handle = sigmffile.fromfile(str(meta_path))  # checks the sha512 against the data
        handle.validate()
        glob = doc["global"]
        assert glob["core:datatype"] == "cf32_le"
        assert glob["core:num_channels"] == n_ant
        assert glob["core:sample_rate"] == 1e6
        assert glob["core:hw"].startswith("simulated")
        assert glob["cfmimo:spec_sha256"] == spec_sha256(spec)
        assert glob["cfmimo:experiment_id"] == "exp-1"
        assert len(glob["core:sha512"]) == 128
        assert doc["captures"][0]["core:frequency"] == spec.radio.carrier_hz
        samples = handle.read_samples()
        assert samples.shape == (FRAMES * 100 + 17, n_ant) if n_ant > 1 else (FRAMES * 100 + 17,)
        notes = doc["annotations"]
        frames = [a for a in notes if "cfmimo:csi" in a]
        assert [a["cfmimo:frame"] for a in frames] == [m.frame for m in originals[ap]]
        assert frames[0]["core:sample_start"] == 17 + 100 * originals[ap][0].frame
        assert frames[3]["cfmimo:csi"] == json.loads(encode_csi(originals[ap][3]))
        pilots = [a for a in notes if "cfmimo:pilot_index" in a]
        assert len(pilots) == 3 * len(frames)
        assert {a["core:sample_count"] for a in pilots} == {4}
        marks = [a["cfmimo:round"] for a in notes if "cfmimo:round" in a]
        assert marks == ([0, 1] if ap == "ap0" else [0])

        replayed, _ = _run(spec, ap, replay=collection)
        assert len(replayed) == len(originals[ap])
        for a, b in zip(originals[ap], replayed, strict=True):
            assert encode_csi(a) == encode_csi(b)  # bit-identical, frame by frame
    coll = json.loads(collection.read_text())
    assert len(coll["collection"]["core:streams"]) == 2


def test_the_recording_stops_at_its_limit_and_says_so(tmp_path: Path) -> None:
    spec = _spec(max_mb_per_ap=0.4)  # 400 kB: 25,000 samples of two channels
    _, tb = _run(spec, "ap0", record=tmp_path)
    doc = json.loads((tmp_path / "ap0.sigmf-meta").read_text())
    assert (tmp_path / "ap0.sigmf-data").stat().st_size == 25_000 * 2 * 8
    assert "stopped at the recording limit (max_bytes 400000)" in doc["global"]["core:description"]
    assert all(
        a["core:sample_start"] + a["core:sample_count"] <= 25_000 for a in doc["annotations"]
    )
    assert tb.recorder.stopped_at == 25_000
    spec = _spec(max_s=0.01)
    _, tb = _run(spec, "ap1", record=tmp_path / "s")
    assert (tmp_path / "s" / "ap1.sigmf-data").stat().st_size == 10_000 * 8
    assert (
        "max_s 0.01 s"
        in json.loads((tmp_path / "s" / "ap1.sigmf-meta").read_text())["global"]["core:description"]
    )


def test_replay_refuses_a_recording_of_another_geometry(tmp_path: Path) -> None:
    spec = _spec(max_s=0.002)
    _run(spec, "ap1", record=tmp_path)
    data = spec.model_dump(mode="json", by_alias=True)
    other = parse_spec({**data, "radio": {**data["radio"], "tau_c": 200}})
    with pytest.raises(RecordingError, match=r"cfmimo:tau_c is 100, but the spec's radio\.tau_c"):
        replay_source(tmp_path, "ap1", other)
    with pytest.raises(RecordingError, match="no recording of AP `ap0`"):
        replay_source(tmp_path, "ap0", spec)
    with pytest.raises(RecordingError, match="no such recording"):
        replay_source(tmp_path / "nope", "ap1", spec)
    with pytest.raises(RecordingError, match=r"no \.sigmf-meta"):
        write_collection(tmp_path / "empty", "x")


def test_a_uhd_recording_without_a_device_is_a_clear_error(tmp_path: Path) -> None:
    """The hardware fields come from the device; with none attached the AP says so and
    records nothing (exit 3, no traceback)."""
    import subprocess
    import sys

    data = _spec().model_dump(mode="json", by_alias=True)
    spec = parse_spec({**data, "backend": {"kind": "uhd"}})
    path = cluster_config_from_spec(
        spec, pub_base_port=21100, record_dir=tmp_path / "rec"
    ).dump_yaml(tmp_path / "u.yaml")
    cmd = [sys.executable, "-m", "ap_cluster.runner", "--cluster", str(path), "--ap", "ap0"]
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=root, check=False)
    assert res.returncode == 3
    assert "no usable USRP" in res.stderr
    assert "Traceback" not in res.stderr
    assert not list((tmp_path / "rec").glob("*"))


def test_iq_show_draws_a_png_and_names_a_bad_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from testbed.cli import app

    _run(_spec(max_s=0.02), "ap0", record=tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["iq", "show", str(tmp_path / "ap0.sigmf-meta")])
    assert res.exit_code == 0, res.output
    png = tmp_path / "ap0.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000  # three panels drawn, not an empty canvas
    res = runner.invoke(app, ["iq", "show", str(tmp_path / "nothing.sigmf-meta")])
    assert res.exit_code == 2
    assert "nothing.sigmf-meta: not a SigMF recording" in res.output
