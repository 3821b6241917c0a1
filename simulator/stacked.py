"""One forward pass of C copies of a chain CNN, each with its own parameters.

Where a model is a chain of ``Conv2d``, ``Linear``, ``ReLU``, ``MaxPool2d``, ``GroupNorm``,
``Dropout`` and ``Flatten`` layers (both of the agents' CNNs are), C clients' copies run as one
network: their feature maps side by side in the channel dimension (``[B, C * ch, H, W]``,
channels-last), each convolution a grouped one (``groups = C``), each group norm over
``C * groups`` groups, each linear layer a batched matrix product. The gradient of the sum of
the clients' losses with respect to the stacked parameters is then every client's own
gradient. It computes what ``vmap`` over ``functional_call`` computes, and ran about twice as
fast here for the MNIST CNN (channels-last grouped convolutions); :func:`chain_of` says whether
a model qualifies, and :class:`StackedChain` checks itself against the model when built.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

__all__ = ["StackedChain", "chain_of"]

_LAYERS = (nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.GroupNorm, nn.Dropout, nn.Flatten)


def chain_of(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The model's leaf layers in order with their parameter prefixes, or None when one of
    them is a kind this module does not stack."""
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    if not leaves or not all(isinstance(m, _LAYERS) for _, m in leaves):
        return None
    return leaves


class StackedChain:
    """Forward of C stacked copies of ``model`` (a chain, see :func:`chain_of`).

    Args:
        model: the architecture (its own parameters are never used).
        example: ``[B, ...]`` one client's input batch, to check the chain against ``model``.

    Raises:
        ValueError: the model is not a chain of stackable layers, or its forward is not the
            chain of its layers in order.
    """

    def __init__(self, model: nn.Module, example: torch.Tensor) -> None:
        leaves = chain_of(model)
        if leaves is None:
            raise ValueError(f"{type(model).__name__} is not a chain of stackable layers")
        self._leaves = _pool_before_relu(leaves)
        self._check(model, example)

    def _check(self, model: nn.Module, example: torch.Tensor) -> None:
        was = model.training
        model.eval()
        with torch.no_grad():
            params = {n: p.detach()[None] for n, p in model.named_parameters()}
            got = self.forward(params, example[None], train=False)[0]
            want = model(example)
        model.train(was)
        if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-4, atol=1e-5):
            raise ValueError(f"{type(model).__name__}'s forward is not the chain of its layers")

    def forward(
        self, params: dict[str, torch.Tensor], x: torch.Tensor, *, train: bool = True
    ) -> torch.Tensor:
        """``[C, B, K]`` outputs of the C copies.

        Args:
            params: every parameter of the model, stacked: ``[C, *shape]``.
            x: ``[C, B, ...]`` each copy's input batch.
            train: dropout on (training) or off.
        """
        c, b = x.shape[0], x.shape[1]
        h = x.transpose(0, 1).reshape(b, c * x.shape[2], *x.shape[3:])
        if h.ndim == 4:
            h = h.contiguous(memory_format=torch.channels_last)
        stacked = True  # h is [B, C * ch, ...] (False: [C, B, features])
        for name, layer in self._leaves:
            if isinstance(layer, nn.Conv2d):
                w = _kernel(params[f"{name}.weight"])
                bias = params.get(f"{name}.bias")
                h = functional.conv2d(
                    h,
                    w,
                    None if bias is None else bias.reshape(-1),
                    layer.stride,
                    layer.padding,
                    layer.dilation,
                    layer.groups * c,
                )
            elif isinstance(layer, nn.GroupNorm):
                h = functional.group_norm(
                    h,
                    layer.num_groups * c,
                    params[f"{name}.weight"].reshape(-1) if layer.affine else None,
                    params[f"{name}.bias"].reshape(-1) if layer.affine else None,
                    layer.eps,
                )
            elif isinstance(layer, nn.MaxPool2d):
                h = functional.max_pool2d(
                    h, layer.kernel_size, layer.stride, layer.padding, layer.dilation
                )
            elif isinstance(layer, nn.ReLU):
                h = functional.relu(h, inplace=stacked)  # never on a copy's input batch
            elif isinstance(layer, nn.Dropout):
                h = functional.dropout(h, layer.p, training=train)
            elif isinstance(layer, nn.Flatten):
                h = h.reshape(b, c, -1).transpose(0, 1)  # [C, B, ch * H * W] per copy
                stacked = False
            elif isinstance(layer, nn.Linear):
                if stacked:
                    raise ValueError("a Linear layer before Flatten is not stacked")
                w = params[f"{name}.weight"]  # [C, out, in]
                bias = params.get(f"{name}.bias")
                out = torch.bmm(h, w.transpose(1, 2))
                h = out if bias is None else out + bias[:, None, :]
        if stacked:
            raise ValueError("the chain ends before a Flatten")
        return h


def _pool_before_relu(leaves: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    """``ReLU, MaxPool2d`` reordered as ``MaxPool2d, ReLU``: the same values and gradients
    (the maximum commutes with a monotonic function), and the element-wise ReLU and its
    backward then touch a quarter of the elements (they took a quarter of the step's time)."""
    out = list(leaves)
    for i in range(len(out) - 1):
        if isinstance(out[i][1], nn.ReLU) and isinstance(out[i + 1][1], nn.MaxPool2d):
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _kernel(w: torch.Tensor) -> torch.Tensor:
    """``[C, out, in, k, k]`` -> ``[C * out, in, k, k]``, channels-last (a one-channel kernel
    too, which ``contiguous`` would leave as it is)."""
    flat = w.reshape(-1, *w.shape[2:])
    return torch.empty(flat.shape, memory_format=torch.channels_last).copy_(flat)
