"""Experiment spec validation: every error names its field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from protocol.spec import SpecError, load_spec, load_yaml, parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _quickstart() -> dict[str, Any]:
    return load_yaml((EXAMPLES / "quickstart.yaml").read_text())


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data, source="test.yaml")
    return info.value.problems


@pytest.mark.parametrize("name", ["quickstart.yaml", "lab.yaml", "fedmarl.yaml", "iq.yaml"])
def test_examples_are_valid(name: str) -> None:
    spec = load_spec(EXAMPLES / name)
    assert spec.n_ues == 6
    assert spec.clients_per_round == 6


def test_lab_example_has_the_lab_hardware() -> None:
    spec = load_spec(EXAMPLES / "lab.yaml")
    assert spec.backend.kind == "uhd"
    assert len(spec.topology.aps) == 4
    for ap in spec.topology.aps:
        assert ap.antennas == 2
        assert ap.device_args.startswith("serial=")
    profiles = sorted(ue.profile for ue in spec.topology.ues)
    assert profiles == ["jetson-nano"] * 2 + ["rpi4"] * 4


def test_defaults_fill_a_minimal_spec() -> None:
    spec = parse_spec({"name": "m", "topology": {"aps": [{"id": "a"}], "ues": [{"id": "u"}]}})
    assert spec.radio.bandwidth_hz == 20e6
    assert spec.backend.kind == "sim"
    assert spec.dataset.partition.kind == "iid"
    assert spec.weights.lambda_ == pytest.approx(0.1)
    assert spec.secagg_threshold == 2


def test_unknown_field_is_named() -> None:
    data = _quickstart()
    data["topology"]["aps"][0]["antenas"] = 2
    assert any(p.startswith("topology.aps.0.antenas:") for p in _problems(data))


def test_unknown_top_level_field_is_named() -> None:
    data = _quickstart()
    data["radoi"] = {}
    assert any(p.startswith("radoi:") for p in _problems(data))


def test_negative_bandwidth_is_named() -> None:
    data = _quickstart()
    data["radio"]["bandwidth_hz"] = -1.0
    (problem,) = _problems(data)
    assert problem.startswith("radio.bandwidth_hz:")
    assert "greater than 0" in problem


@pytest.mark.parametrize("alpha", [0.0, -0.5])
def test_dirichlet_alpha_must_be_positive(alpha: float) -> None:
    data = _quickstart()
    data["dataset"]["partition"] = {"kind": "dirichlet", "alpha": alpha}
    (problem,) = _problems(data)
    assert problem.startswith("dataset.partition.dirichlet.alpha:")


def test_tau_p_above_tau_c_names_both() -> None:
    data = _quickstart()
    data["radio"]["tau_p"] = 300
    (problem,) = _problems(data)
    assert problem.startswith("radio.tau_p: 300 ")
    assert "radio.tau_c (200)" in problem


def test_more_ues_than_the_data_can_be_split_into() -> None:
    data = _quickstart()
    data["dataset"]["samples_per_client"] = 20000  # 6 x 20000 > 60000 MNIST samples
    (problem,) = _problems(data)
    assert problem.startswith("topology.ues:")
    assert "60000" in problem


def test_too_many_ues_for_the_minimum_split() -> None:
    data = _quickstart()
    data["dataset"]["samples_per_client"] = None
    data["dataset"]["min_samples_per_client"] = 1000
    data["topology"]["ues"] = [{"id": f"u{i}"} for i in range(61)]
    assert any(p.startswith("topology.ues: 61 UEs") for p in _problems(data))


def test_every_problem_is_reported_at_once() -> None:
    data = _quickstart()
    data["radio"]["bandwidth_hz"] = -1
    data["fl"]["rounds"] = 0
    data["topology"]["ues"][0]["profile"] = "pi5"
    problems = _problems(data)
    assert any(p.startswith("radio.bandwidth_hz") for p in problems)
    assert any(p.startswith("fl.rounds") for p in problems)


def test_link_mode_iq_implies_the_phys_table_block_and_no_chase_combining() -> None:
    data = _quickstart()
    data["link"] = {"mode": "iq"}
    link = parse_spec(data).link
    assert (link.bler, link.tbs_bits, link.chase_combining) == ("measured", 4000, False)
    refused: list[tuple[dict[str, Any], str]] = [
        ({"tbs_bits": 8448}, "link.tbs_bits: mode iq's PHY carries 4000-bit blocks"),
        ({"chase_combining": True}, "link.chase_combining: mode iq's receiver"),
        ({"bler": "nr"}, "link.bler: mode iq plans with the PHY's schemes"),
        ({"enabled": False}, "link.mode: iq sends the bytes through the PHY"),
        ({"mcs_table": "nr-256qam"}, "link.mcs_table: `nr-256qam` is an NR table"),
    ]
    for extra, message in refused:
        data["link"] = {"mode": "iq", **extra}
        assert any(p.startswith(message) for p in _problems(data)), (extra, _problems(data))
    data["link"] = {"bler_table": "my.json"}
    assert any(p.startswith("link.bler_table: is read only with") for p in _problems(data))
    data["link"] = {"mode": "iq"}
    data["engine"] = "sim"
    data["backend"] = {"kind": "uhd"}
    joined = "\n".join(_problems(data))
    assert "link.mode: iq sends every update's bytes through the PHY; it runs in the" in joined
    assert "link.mode: iq needs backend.kind sim" in joined


def test_fedmarl_mode_checks_its_engine_agents_and_boards() -> None:
    data = _quickstart()
    data["mode"] = "fedmarl"
    data["engine"] = {"kind": "sim", "backend": "ray"}
    data["topology"]["ues"] = [{"id": "ue0", "profile": "pi5"}]
    joined = "\n".join(_problems(data))
    assert "engine.backend: mode fedmarl's agents learn in the simulator's own process" in joined
    assert "topology.ues: mode fedmarl needs at least 2 agents, got 1" in joined
    assert "topology.ues.0.profile: mode fedmarl's environment knows the built-in" in joined
    data = _quickstart()
    data["fedmarl"] = {"slots": 5}
    assert any(p.startswith("fedmarl.slots") for p in _problems(data))


def test_cross_checks() -> None:
    data = _quickstart()
    data["topology"]["ues"][1]["id"] = "ue0"
    data["topology"]["ues"][2]["profile"] = "pi5"
    data["model"]["name"] = "cifar_cnn"
    data["fl"]["clients_per_round"] = 7
    problems = _problems(data)
    joined = "\n".join(problems)
    assert "topology.ues: duplicate ids ['ue0']" in joined
    assert "topology.ues.2.profile: unknown profile `pi5`" in joined
    assert "model.name: `cifar_cnn` is for cifar10" in joined
    assert "fl.clients_per_round: 7 exceeds" in joined


def test_secure_aggregation_threshold_is_a_majority_of_the_round() -> None:
    data = _quickstart()
    data["secure_aggregation"] = {"enabled": True, "threshold": 3}
    assert "secure_aggregation.threshold: 3 must exceed half of the 6 clients per round" in (
        "\n".join(_problems(data))
    )
    data["secure_aggregation"]["threshold"] = 4
    assert parse_spec(data, source="test").secagg_threshold == 4
    # SecAgg+ on a sparse graph: its share threshold is a majority of each neighbourhood
    data["secure_aggregation"] = {"enabled": True, "threshold": 2, "neighbours": 4}
    assert parse_spec(data, source="test").secagg_threshold == 2


def test_uhd_backend_enforces_b210_limits() -> None:
    data = _quickstart()
    data["backend"] = {"kind": "uhd"}
    data["radio"]["sample_rate_hz"] = 40e6
    data["topology"]["aps"][0]["antennas"] = 3
    joined = "\n".join(_problems(data))
    assert "topology.aps.0.antennas: a B210 has at most 2" in joined
    assert "radio.sample_rate_hz: 4e+07 exceeds the B210 limit 3.072e+07" in joined


def test_custom_profile_is_accepted() -> None:
    data = _quickstart()
    data["device_profiles"] = {
        "pi5": {
            "name": "pi5",
            "f_levels_hz": [1.0e9, 2.4e9],
            "kappa": 1e-27,
            "idle_power_w": 3.0,
            "cycles_per_sample": 1e6,
            "p_max_w": 0.2,
        }
    }
    data["topology"]["ues"][0]["profile"] = "pi5"
    spec = parse_spec(copy.deepcopy(data))
    assert spec.profile(spec.topology.ues[0]).f_max_hz == 2.4e9


def test_profile_levels_must_ascend() -> None:
    data = _quickstart()
    data["device_profiles"] = {
        "bad": {
            "name": "bad",
            "f_levels_hz": [2e9, 1e9],
            "kappa": 1e-27,
            "idle_power_w": 1,
            "cycles_per_sample": 1,
            "p_max_w": 1,
        }
    }
    assert any("device_profiles.bad.f_levels_hz" in p for p in _problems(data))


def test_load_spec_reports_unreadable_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read file"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    bad.write_text("- a list\n")
    with pytest.raises(SpecError, match="expected a mapping"):
        load_spec(bad)
