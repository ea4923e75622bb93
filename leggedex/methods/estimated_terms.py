"""The privileged quantities an estimator predicts: named terms of the env's ``privileged`` group.

Terms are picked by name from the layout the env publishes in its observation spec
(``ObsSpec.extras["terms"]["privileged"]``: term -> start, size, scale). The estimate lists the value terms first,
then the probability terms (0/1 quantities such as contacts), each in the order given.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from leggedex.envs.vec_env import ObsSpec

TARGET_GROUP = "privileged"


@dataclass(frozen=True)
class EstimatedTerm:
    name: str
    start: int  # in the privileged group
    size: int
    scale: float | list[float]  # the env multiplied the raw quantity by this
    probability: bool


class EstimatedTerms:
    """The terms, in estimate order; ``select`` cuts the regression target out of the privileged group."""

    def __init__(self, terms: list[EstimatedTerm]) -> None:
        self.terms = terms

    @classmethod
    def resolve(cls, spec: ObsSpec, names: list[str], probability_names: list[str], who: str) -> EstimatedTerms:
        """Look ``names`` up in ``spec``'s privileged layout; raise one ``ValueError`` naming what is missing."""
        layout = spec.extras.get("terms", {}).get(TARGET_GROUP)
        if layout is None:
            raise ValueError(
                f"{who} estimates terms of the '{TARGET_GROUP}' observation group by name, but the env does not "
                f"describe that group's terms (VecEnv.obs_terms); it describes {sorted(spec.extras.get('terms', {}))}"
            )
        unknown = [name for name in names if name not in layout]
        if unknown:
            raise ValueError(f"{who} estimates {unknown}, which the env's '{TARGET_GROUP}' group does not hold; "
                             f"it holds {list(layout)}")
        ordered = [n for n in names if n not in probability_names] + [n for n in names if n in probability_names]
        return cls([EstimatedTerm(name, int(layout[name]["start"]), int(layout[name]["size"]), layout[name]["scale"],
                                  name in probability_names) for name in ordered])

    @property
    def size(self) -> int:
        return sum(term.size for term in self.terms)

    @property
    def num_probabilities(self) -> int:
        return sum(term.size for term in self.terms if term.probability)

    def select(self, privileged: torch.Tensor) -> torch.Tensor:
        """The target, (batch, size), from a raw privileged group (batch, privileged size)."""
        return torch.cat([privileged[..., t.start : t.start + t.size] for t in self.terms], dim=-1)

    def errors(self, estimate: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """Mean absolute error of each term in the raw quantity's unit (the env's scale divided out)."""
        out, offset = {}, 0
        for term in self.terms:
            error = (estimate[..., offset : offset + term.size] - target[..., offset : offset + term.size]).abs()
            scale = torch.as_tensor(term.scale, dtype=error.dtype, device=error.device).abs()
            out[term.name] = float((error / scale).mean())
            offset += term.size
        return out
