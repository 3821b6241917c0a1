"""Local training on real MNIST: loss falls, FedProx pulls the update towards the global model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from torch import nn

from edge_agent.data import ArrayDataset, DatasetError, load_dataset, resolve_data_dir
from edge_agent.models import build_model, parameters_to_vector, vector_to_parameters
from edge_agent.training import TrainResult, configure_torch, evaluate, local_train


@pytest.fixture(scope="module")
def mnist() -> tuple[ArrayDataset, ArrayDataset]:
    try:
        resolve_data_dir()
    except DatasetError as err:
        pytest.skip(f"shared datasets absent: {err}")
    configure_torch(1)
    rng = np.random.default_rng(0)
    train = load_dataset("mnist", "train", indices=np.sort(rng.permutation(60000)[:2000]))
    test = load_dataset("mnist", "test", indices=np.arange(1000))
    return train, test


def _train(model: nn.Module, data: ArrayDataset, **kw: Any) -> TrainResult:
    args: dict[str, Any] = {
        "epochs": 1,
        "batch_size": 32,
        "lr": 0.05,
        "momentum": 0.5,
        "fedprox_mu": 0.0,
        "seed": 0,
    }
    args.update(kw)
    return local_train(model, data.x, data.y, **args)


def test_training_reduces_loss_and_learns(mnist: tuple[ArrayDataset, ArrayDataset]) -> None:
    train, test = mnist
    model = build_model("mnist_cnn", seed=0)
    w0 = parameters_to_vector(model)
    res = _train(model, train)
    assert res.loss_before > 2.0  # an untrained 10-class model: about ln 10
    assert res.loss_after < 0.8 * res.loss_before
    assert res.samples == 2000
    assert res.samples_processed == 2000
    assert res.seconds > 0
    assert res.delta.dtype == np.float32
    assert res.delta.shape == w0.shape
    assert np.allclose(parameters_to_vector(model), w0 + res.delta, atol=1e-6)
    acc, loss = evaluate(model, test.x, test.y)
    assert acc > 0.8
    assert loss < 1.0


def test_global_vector_is_loaded_and_seed_makes_it_repeatable(
    mnist: tuple[ArrayDataset, ArrayDataset],
) -> None:
    train, _ = mnist
    global_vec = parameters_to_vector(build_model("mnist_cnn", seed=3))
    sub = train.subset(np.arange(256))
    a = _train(build_model("mnist_cnn", seed=9), sub, global_vector=global_vec, seed=1)
    b = _train(build_model("mnist_cnn", seed=8), sub, global_vector=global_vec, seed=1)
    c = _train(build_model("mnist_cnn", seed=8), sub, global_vector=global_vec, seed=2)
    ref = build_model("mnist_cnn")
    vector_to_parameters(global_vec, ref)
    assert a.loss_before == pytest.approx(evaluate(ref, sub.x, sub.y)[1], rel=1e-5)
    assert np.array_equal(a.delta, b.delta)
    assert not np.array_equal(a.delta, c.delta)


def test_fedprox_term_shrinks_the_update(mnist: tuple[ArrayDataset, ArrayDataset]) -> None:
    train, _ = mnist
    sub = train.subset(np.arange(512))
    global_vec = parameters_to_vector(build_model("mnist_cnn", seed=4))
    plain = _train(build_model("mnist_cnn"), sub, global_vector=global_vec, epochs=2)
    prox = _train(build_model("mnist_cnn"), sub, global_vector=global_vec, epochs=2, fedprox_mu=1.0)
    assert not np.allclose(plain.delta, prox.delta)
    assert np.linalg.norm(prox.delta) < np.linalg.norm(plain.delta)


def test_bad_arguments_name_the_parameter(mnist: tuple[ArrayDataset, ArrayDataset]) -> None:
    train, _ = mnist
    with pytest.raises(ValueError, match="`epochs`"):
        _train(build_model("mnist_cnn"), train, epochs=0)
    with pytest.raises(ValueError, match="`fedprox_mu`"):
        _train(build_model("mnist_cnn"), train, fedprox_mu=-1.0)
    with pytest.raises(ValueError, match="`y`"):
        local_train(build_model("mnist_cnn"), train.x, train.y[:5])
