"""Batched training: each virtual client's update is the agent's own, to float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edge_agent.data import load_dataset
from edge_agent.models import build_model, parameters_to_vector
from edge_agent.training import local_train
from simulator import training
from simulator.stacked import StackedChain
from simulator.training import BatchedTrainer, SGDConfig


@pytest.fixture(scope="module")
def mnist() -> tuple[torch.Tensor, torch.Tensor]:
    ds = load_dataset("mnist", "train", indices=np.arange(3000))
    return torch.from_numpy(ds.x), torch.from_numpy(ds.y.astype(np.int64))


def _agent_delta(x, y, seg, w, cfg: SGDConfig, weight_decay: float = 0.0) -> np.ndarray:
    return local_train(
        build_model("mnist_cnn"),
        x[seg].numpy(),
        y[seg].numpy(),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        momentum=cfg.momentum,
        fedprox_mu=cfg.fedprox_mu,
        global_vector=w,
        seed=cfg.seed,
        weight_decay=weight_decay,
        loss_before=False,
    ).delta


@pytest.mark.parametrize("workers", [1, 2], ids=["one-thread", "two-workers"])
@pytest.mark.parametrize("stacked", [True, False], ids=["stacked", "vmap"])
def test_each_client_trains_as_its_agent(
    mnist, stacked: bool, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(training, "_POOL_MIN_ITEMS", 1)  # these few chunks on the workers too
    x, y = mnist
    w = parameters_to_vector(build_model("mnist_cnn", seed=5))
    cfg = SGDConfig(
        epochs=2, batch_size=16, lr=0.05, momentum=0.5, fedprox_mu=0.1, weight_decay=1e-3, seed=9
    )
    # uneven sizes: clients sit steps out once their epoch has no batch left
    segs = [np.arange(s, s + n) for s, n in ((0, 40), (100, 17), (300, 5), (500, 64))]
    trainer = BatchedTrainer("mnist_cnn", chunk=3, workers=workers)
    if not stacked:
        trainer._stacked = None
    scale = np.array([1.0, 2.0, 0.5, 3.0])
    total, deltas = trainer.train(w, x, y, segs, cfg, scale=scale, each=True)
    want = [_agent_delta(x, y, s, w, cfg, weight_decay=1e-3) for s in segs]
    for got, ref in zip(deltas, want, strict=True):
        assert np.abs(got - ref).max() <= 1e-6 * max(1.0, float(np.abs(ref).max()))
        assert np.abs(ref).max() > 1e-3  # they did train
    expected = sum(q * d.astype(np.float64) for q, d in zip(scale, want, strict=True))
    np.testing.assert_allclose(total, expected, atol=1e-6)


@pytest.mark.parametrize("workers", [1, 2], ids=["one-thread", "two-workers"])
def test_one_step_clients_are_summed_in_closed_form(
    mnist, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(training, "_POOL_MIN_ITEMS", 1)
    x, y = mnist
    w = parameters_to_vector(build_model("mnist_cnn", seed=1))
    cfg = SGDConfig(epochs=1, batch_size=32, lr=0.1, momentum=0.9, seed=3)
    # all <= one batch, and more samples than one scoring block (256): several blocks summed
    segs = [np.arange(10 * i, 10 * i + 3 + i % 7) for i in range(60)]
    q = np.linspace(0.5, 2.0, len(segs))
    total, _ = BatchedTrainer("mnist_cnn", workers=workers).train(w, x, y, segs, cfg, scale=q)
    pairs = zip(q, segs, strict=True)
    want = sum(qi * _agent_delta(x, y, s, w, cfg).astype(np.float64) for qi, s in pairs)
    np.testing.assert_allclose(total, want, atol=2e-6 * float(np.abs(want).max()))


def test_dropout_model_trains_with_its_own_masks() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(40, 3, 32, 32), torch.randint(0, 10, (40,))
    trainer = BatchedTrainer("cifar_cnn", chunk=2)
    assert trainer._stacked is not None  # GroupNorm and Dropout stack too
    w = parameters_to_vector(build_model("cifar_cnn"))
    segs = [np.arange(0, 20), np.arange(20, 40)]
    _, deltas = trainer.train(w, x, y, segs, SGDConfig(1, 8, 0.05, seed=1), each=True)
    assert all(np.isfinite(d).all() for d in deltas)
    assert all(np.abs(d).max() > 0 for d in deltas)
    assert not np.allclose(deltas[0], deltas[1])


def test_stacked_chain_refuses_what_it_cannot_stack() -> None:
    class Skip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.flat, self.fc = nn.Flatten(), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.flat(x)) + x  # not the chain of its layers

    with pytest.raises(ValueError, match="not the chain of its layers"):
        StackedChain(Skip(), torch.randn(2, 4))
    with pytest.raises(ValueError, match="stackable"):
        StackedChain(nn.Sequential(nn.BatchNorm1d(4)), torch.randn(2, 4))


def test_scoring_on_worker_threads_matches_one_thread(
    mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(training, "_POOL_MIN_ITEMS", 1)
    x, y = mnist
    w = parameters_to_vector(build_model("mnist_cnn", seed=2))
    one, two = BatchedTrainer("mnist_cnn"), BatchedTrainer("mnist_cnn", workers=2)
    index = np.arange(2999, 100, -3)  # out of order, several blocks of 256
    want = one.losses(w, x[index], y[index])
    got = two.losses(w, x, y, index)
    assert got.shape == (index.size,)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    hits1, loss1 = one.correct(w, x, y)
    hits2, loss2 = two.correct(w, x, y)
    assert hits1 == hits2
    assert abs(loss1 - loss2) <= 1e-5 * abs(loss1)
    two.close()
    assert two.correct(w, x[:10], y[:10])[0] == one.correct(w, x[:10], y[:10])[0]  # still works


def test_config_errors_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="`epochs`"):
        SGDConfig(epochs=0, batch_size=1, lr=0.1)
    with pytest.raises(ValueError, match="`fedprox_mu`"):
        SGDConfig(epochs=1, batch_size=1, lr=0.1, fedprox_mu=-1)
    with pytest.raises(ValueError, match="`chunk`"):
        BatchedTrainer("mnist_cnn", chunk=0)
    with pytest.raises(ValueError, match="`workers`"):
        BatchedTrainer("mnist_cnn", workers=0)
