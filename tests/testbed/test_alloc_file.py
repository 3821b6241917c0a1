import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controller.allocation.instance import AllocationInstance
from controller.allocation.scenario import random_instance
from testbed.alloc_file import InstanceError, InstanceModel, load_instance, parse_instance


def _doc() -> dict:
    return {
        "bandwidth_hz": 20e6,
        "noise_psd_w_per_hz": 4e-21,
        "update_bits": 4e6,
        "p_max_w": 0.2,
        "users": [
            {
                "gain": 1e-11,
                "cycles_per_sample": 2e6,
                "samples": 300,
                "kappa": 9e-28,
                "f_levels_hz": [6e8, 1e9, 1.5e9],
            },
            {
                "gain": 3e-12,
                "cycles_per_sample": 1e6,
                "samples": 500,
                "kappa": 1e-27,
                "f_min_hz": 1e8,
                "f_max_hz": 1.4e9,
            },
        ],
        "weights": {"alpha": 1, "beta": 0.1, "gamma": 1},
    }


def _problems(doc: dict) -> str:
    with pytest.raises(InstanceError) as err:
        parse_instance(doc)
    return "\n".join(err.value.problems)


def test_good_document_converts() -> None:
    inst = parse_instance(_doc()).to_instance()
    assert inst.n_users == 2
    assert list(inst.has_levels) == [True, False]
    assert inst.f_min_hz[0] == 6e8
    assert inst.f_max_hz[0] == 1.5e9
    assert inst.f_min_hz[1] == 1e8


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("users", 0, "gain"), -1.0, "users.0.gain"),
        (("users", 1, "samples"), 0, "users.1.samples"),
        (("bandwidth_hz",), -5.0, "bandwidth_hz"),
        (("users", 0, "f_levels_hz"), [1e9, 6e8], "users.0.f_levels_hz"),
        (("weights", "beta"), -0.1, "weights.beta"),
        (("users", 1, "kappa"), float("nan"), "users.1.kappa"),
    ],
)
def test_bad_values_name_the_field(path: tuple[Any, ...], value: Any, field: str) -> None:
    doc = _doc()
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert field in _problems(doc)


def test_no_users_and_missing_fields_are_named() -> None:
    doc = _doc()
    doc["users"] = []
    assert "users" in _problems(doc)
    doc = _doc()
    del doc["update_bits"]
    assert "update_bits" in _problems(doc)
    doc = _doc()
    del doc["users"][1]["f_max_hz"]
    assert "f_max_hz" in _problems(doc)
    doc = _doc()
    doc["users"][0]["f_min_hz"] = 1e8
    assert "users.0" in _problems(doc)
    doc = _doc()
    doc["users"][0]["typo"] = 1
    assert "users.0.typo" in _problems(doc)


def test_load_instance_reports_bad_json(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(InstanceError, match="not valid JSON"):
        load_instance(p)
    p.write_text(json.dumps(_doc()))
    assert load_instance(p).to_instance().n_users == 2


def test_round_trip_through_the_json_model() -> None:
    inst = random_instance(np.random.default_rng(3), 6, levels="mixed")
    back = InstanceModel.from_instance(inst).to_instance()
    np.testing.assert_array_equal(back.gain, inst.gain)
    np.testing.assert_array_equal(back.has_levels, inst.has_levels)
    for row_back, row in zip(back.levels_hz, inst.levels_hz, strict=True):
        np.testing.assert_array_equal(row_back[~np.isnan(row_back)], row[~np.isnan(row)])


def test_instance_arrays_are_checked_by_name() -> None:
    inst = random_instance(np.random.default_rng(0), 3)
    kw: dict[str, Any] = {
        "gain": inst.gain,
        "cycles_per_sample": inst.cycles_per_sample,
        "samples": inst.samples,
        "kappa": inst.kappa,
        "f_min_hz": inst.f_min_hz,
        "f_max_hz": inst.f_max_hz,
        "p_max_w": inst.p_max_w,
        "bandwidth_hz": 1e6,
        "noise_psd_w_per_hz": 1e-20,
        "update_bits": 1e6,
    }
    with pytest.raises(ValueError, match="`samples`"):
        AllocationInstance(**{**kw, "samples": np.array([1.0, 2.0])})
    with pytest.raises(ValueError, match="`kappa`"):
        AllocationInstance(**{**kw, "kappa": np.array([1.0, -1.0, 0.0])})
    with pytest.raises(ValueError, match="`f_min_hz`"):
        AllocationInstance(**{**kw, "f_min_hz": inst.f_max_hz * 2})
    assert AllocationInstance(**kw).subset([2, 0]).n_users == 2
