"""Observation layouts: each group is a list of named terms with a size, a scale and a noise level.

The layout is the single source of truth for a group's size and order (the env reports sizes from it and the
deploy contract will print it), so a comment can never drift from the tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ObsTerm:
    """One slice of an observation group: ``scale * value + noise * scale * U(-1, 1)``."""

    name: str
    size: int
    scale: float | tuple[float, ...] = 1.0
    noise: float = 0.0


@dataclass(frozen=True)
class ObsLayout:
    terms: tuple[ObsTerm, ...]

    @property
    def size(self) -> int:
        return sum(term.size for term in self.terms)

    def describe(self) -> list[dict]:
        """Name, slice and scale of every term, in order (for docs and the deploy contract)."""
        out, start = [], 0
        for term in self.terms:
            out.append({"name": term.name, "start": start, "size": term.size, "scale": term.scale})
            start += term.size
        return out

    def scale_vector(self, device: torch.device) -> torch.Tensor:
        parts = []
        for term in self.terms:
            scale = torch.as_tensor(term.scale, dtype=torch.float32, device=device)
            parts.append(scale.expand(term.size) if scale.dim() == 0 else scale)
        return torch.cat(parts)

    def noise_vector(self, device: torch.device, level: float) -> torch.Tensor:
        noise = torch.cat([torch.full((t.size,), t.noise * level, device=device) for t in self.terms])
        return noise * self.scale_vector(device)

    def assemble(self, values: dict[str, torch.Tensor], scales: torch.Tensor) -> torch.Tensor:
        """Concatenate the terms' raw values in layout order and scale them."""
        parts = []
        for term in self.terms:
            value = values[term.name]
            if value.shape[-1] != term.size:
                raise ValueError(f"observation term {term.name!r} has size {value.shape[-1]}, layout says {term.size}")
            parts.append(value)
        return torch.cat(parts, dim=-1) * scales
