"""A task's left-right mirror, as data: for each observation group and for the action, a signed permutation
``mirror(x)[..., i] = sign[i] * x[..., index[i]]``.

Reflecting a legged robot across its sagittal plane maps every quantity a locomotion task observes to another one
of the same group (a left foot's contact to the right foot's, a lateral velocity to its negative), so the mirror
of a whole group is one gather and one multiply. An env that knows its mirror reports it in ``ObsSpec.extras``
(``mirror``), and a method that augments its data with mirrored samples (``PPO(symmetry_augmentation=True)``)
reads it from there; an env that cannot mirror some term says which (``mirror_unavailable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Mirror", "SignedPermutation"]


@dataclass(frozen=True)
class SignedPermutation:
    """``x -> sign * x[..., index]`` on the last dimension; a mirror is its own inverse (``is_involution``)."""

    index: tuple[int, ...]
    sign: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.index) != len(self.sign):
            raise ValueError(f"a signed permutation needs one sign per index, got {len(self.index)} indices and "
                             f"{len(self.sign)} signs")
        if sorted(self.index) != list(range(len(self.index))):
            raise ValueError(f"index {list(self.index)} is not a permutation of 0..{len(self.index) - 1}")

    @classmethod
    def identity(cls, size: int) -> SignedPermutation:
        return cls(tuple(range(size)), (1.0,) * size)

    @classmethod
    def concat(cls, parts: Sequence[SignedPermutation]) -> SignedPermutation:
        """The parts side by side, each on its own consecutive slice."""
        index: list[int] = []
        sign: list[float] = []
        offset = 0
        for part in parts:
            index += [offset + i for i in part.index]
            sign += list(part.sign)
            offset += len(part)
        return cls(tuple(index), tuple(sign))

    def __len__(self) -> int:
        return len(self.index)

    def repeated(self, frames: int) -> SignedPermutation:
        """The same mirror on each of ``frames`` stacked frames (a history)."""
        return SignedPermutation.concat([self] * frames)

    def is_involution(self) -> bool:
        return all(self.index[self.index[i]] == i and self.sign[i] * self.sign[self.index[i]] == 1.0
                   for i in range(len(self)))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != len(self):
            raise ValueError(f"the mirror is of size {len(self)}, the tensor's last dimension {x.shape[-1]}")
        index = torch.as_tensor(self.index, device=x.device)
        sign = torch.as_tensor(self.sign, dtype=x.dtype, device=x.device)
        return x.index_select(-1, index) * sign

    def to_dict(self) -> dict[str, list]:
        return {"index": list(self.index), "sign": list(self.sign)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignedPermutation:
        return cls(tuple(int(i) for i in data["index"]), tuple(float(s) for s in data["sign"]))


@dataclass(frozen=True)
class Mirror:
    """The mirror of every observation group (by name) and of the action."""

    groups: dict[str, SignedPermutation]
    actions: SignedPermutation

    def observations(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every group of ``obs`` mirrored; a group without a mirror is named."""
        missing = [name for name in obs if name not in self.groups]
        if missing:
            raise ValueError(f"no mirror for observation group(s) {missing} (mirrored groups: {sorted(self.groups)})")
        return {name: self.groups[name].apply(value) for name, value in obs.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"groups": {name: m.to_dict() for name, m in self.groups.items()}, "actions": self.actions.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mirror:
        return cls({name: SignedPermutation.from_dict(m) for name, m in data["groups"].items()},
                   SignedPermutation.from_dict(data["actions"]))
