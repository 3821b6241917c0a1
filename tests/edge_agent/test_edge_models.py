"""Models: shapes, determinism, and the flat-vector round trip secure aggregation relies on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edge_agent.models import (
    build_model,
    num_parameters,
    parameters_to_vector,
    state_dict_to_vector,
    vector_to_parameters,
    vector_to_state_dict,
)


@pytest.mark.parametrize(
    ("name", "shape"), [("mnist_cnn", (1, 28, 28)), ("cifar_cnn", (3, 32, 32))]
)
def test_logits_shape_and_no_buffers(name: str, shape: tuple[int, int, int]) -> None:
    model = build_model(name).eval()
    out = model(torch.zeros(4, *shape))
    assert out.shape == (4, 10)
    assert list(model.buffers()) == []
    assert num_parameters(model) == sum(p.numel() for p in model.parameters())


def test_seeded_build_is_deterministic_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = parameters_to_vector(build_model("mnist_cnn", seed=5))
    assert torch.rand(1) == expected
    b = parameters_to_vector(build_model("mnist_cnn", seed=5))
    c = parameters_to_vector(build_model("mnist_cnn", seed=6))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32
    assert a.shape == (num_parameters(build_model("mnist_cnn")),)


def test_vector_round_trip_through_model_and_state_dict() -> None:
    src, dst = build_model("mnist_cnn", seed=1), build_model("mnist_cnn", seed=2)
    vec = parameters_to_vector(src)
    vector_to_parameters(vec, dst)
    assert np.array_equal(parameters_to_vector(dst), vec)
    state = vector_to_state_dict(vec + 1.0, src.state_dict())
    assert list(state) == list(src.state_dict())
    assert np.allclose(state_dict_to_vector(state), vec + 1.0)


def test_wrong_lengths_and_names_are_refused() -> None:
    model = build_model("mnist_cnn")
    with pytest.raises(ValueError, match="`vector`"):
        vector_to_parameters(np.zeros(10, dtype=np.float32), model)
    with pytest.raises(ValueError, match="`name`"):
        build_model("resnet")
