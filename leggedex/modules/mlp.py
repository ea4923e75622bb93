"""Multi-layer perceptrons built from a list of hidden sizes and an activation name."""

from __future__ import annotations

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


class MLP(nn.Sequential):
    """``in -> hidden[0] -> act -> ... -> hidden[-1] -> act -> out`` (no activation after the output)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dims: list[int] | tuple[int, ...], act: str = "elu") -> None:
        if in_dim <= 0 or out_dim <= 0 or any(h <= 0 for h in hidden_dims):
            raise ValueError(f"MLP sizes must be positive: in {in_dim}, hidden {list(hidden_dims)}, out {out_dim}")
        layers: list[nn.Module] = []
        previous = in_dim
        for width in hidden_dims:
            layers += [nn.Linear(previous, width), activation(act)]
            previous = width
        layers.append(nn.Linear(previous, out_dim))
        super().__init__(*layers)
        self.in_dim = in_dim
        self.out_dim = out_dim
