"""The CNNs trained by the edge agents, and their parameters as flat float32 vectors.

Neither model has buffers (no batch normalisation: its running statistics do not average well
under FedAvg, and GroupNorm serves CIFAR-10 instead), so the parameters are the whole state and
the flat vector that secure aggregation sums describes the model completely. Vector order is the
order of ``model.state_dict()``.

Kept Python 3.8 compatible: edge boards import this module. Imports only torch and numpy, so it
can be shared with the controller's evaluation without pulling in the rest of the agent.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Dict, List

import numpy as np
import torch
from torch import nn

__all__ = [
    "MODEL_NAMES",
    "CifarCNN",
    "MnistCNN",
    "TraceMLP",
    "build_model",
    "num_parameters",
    "parameters_to_vector",
    "state_dict_to_vector",
    "vector_to_parameters",
    "vector_to_state_dict",
]


class MnistCNN(nn.Module):
    """Two 5x5 convolutions (16, 32 channels) with max pooling, then 512 -> 128 -> 10.

    About 80k parameters; input ``[B, 1, 28, 28]``, output logits ``[B, 10]``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 4 * 4, 128), nn.ReLU(inplace=True), nn.Linear(128, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _conv_block(c_in: int, c_out: int) -> List[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.GroupNorm(8, c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.GroupNorm(8, c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    ]


class CifarCNN(nn.Module):
    """Three VGG-style blocks (32, 64, 128 channels; GroupNorm), then 2048 -> 256 -> 10.

    About 0.84M parameters; input ``[B, 3, 32, 32]``, output logits ``[B, 10]``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_block(3, 32), *_conv_block(32, 64), *_conv_block(64, 128)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(128 * 4 * 4, 256),
            nn.ReLU(inplace=True),
            nn.Linear(256, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class TraceMLP(nn.Module):
    """The wireless-trace task's model (:mod:`edge_agent.data.wifi`): 16 -> 64 -> 64 -> 4.

    About 5.5k parameters; input ``[B, 1, 4, 4]`` (the last 4 windows of a link, 4 features
    each), output logits ``[B, 4]`` (the next window's link state).
    """

    def __init__(self) -> None:
        super().__init__()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, 4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)


_BUILDERS: Dict[str, Callable[[], nn.Module]] = {
    "mnist_cnn": MnistCNN,
    "cifar_cnn": CifarCNN,
    "wifi_mlp": TraceMLP,
}
MODEL_NAMES = tuple(_BUILDERS)


def build_model(name: str, seed: int = 0) -> nn.Module:
    """A freshly initialised model (``mnist_cnn``, ``cifar_cnn`` or ``wifi_mlp``), the same
    for one ``seed``.

    The global RNG of torch is left as it was.
    """
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"`name` must be one of {MODEL_NAMES}, got {name!r}") from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder()


def num_parameters(model: nn.Module) -> int:
    """Length of the flat vector of ``model``."""
    return sum(t.numel() for t in model.state_dict().values())


def state_dict_to_vector(state: Dict[str, torch.Tensor]) -> np.ndarray:
    """Concatenate a state dict (in its key order) into ``[P], float32``."""
    if not state:
        return np.zeros(0, dtype=np.float32)
    flat = [t.detach().reshape(-1).to(dtype=torch.float32, device="cpu") for t in state.values()]
    return torch.cat(flat).numpy().copy()


def vector_to_state_dict(
    vector: np.ndarray, template: Dict[str, torch.Tensor]
) -> Dict[str, torch.Tensor]:
    """Cut ``vector`` (``[P], float``) into tensors shaped and typed like ``template``'s."""
    vec = np.asarray(vector)
    expected = sum(t.numel() for t in template.values())
    if vec.ndim != 1 or vec.shape[0] != expected:
        raise ValueError(f"`vector` must have shape ({expected},), got {vec.shape}")
    out: Dict[str, torch.Tensor] = OrderedDict()
    offset = 0
    for key, t in template.items():
        n = t.numel()
        chunk = torch.from_numpy(np.ascontiguousarray(vec[offset : offset + n]))
        out[key] = chunk.reshape(t.shape).to(dtype=t.dtype, device=t.device).clone()
        offset += n
    return out


def parameters_to_vector(model: nn.Module) -> np.ndarray:
    """The whole state of ``model`` as ``[P], float32``."""
    return state_dict_to_vector(model.state_dict())


def vector_to_parameters(vector: np.ndarray, model: nn.Module) -> None:
    """Load ``vector`` (``[P], float``, as made by :func:`parameters_to_vector`) into ``model``."""
    model.load_state_dict(vector_to_state_dict(vector, model.state_dict()))
