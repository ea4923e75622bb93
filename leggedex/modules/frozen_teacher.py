"""A frozen copy of a teacher-student actor-critic's teacher, the labeller of the distillation phase.

It holds its own copies of what the teacher's action reads: the actor, the privilege encoder and the
normalizers of ``policy`` and ``privileged``. Its parameters never require a gradient, from construction on:
a method builds it with its other networks, before DDP wraps the model, so every rank registers the same
parameter set whatever the phase. ``copy_from`` refreshes it from the live teacher at the switch.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from leggedex.modules.actor_critic_ts import ActorCriticTS


def teacher_parts(source: ActorCriticTS) -> dict[str, nn.Module]:
    """What the teacher's action reads, by the name its copy has in ``FrozenTeacher``."""
    return {"actor": source.actor, "privilege_encoder": source.privilege_encoder,
            "policy_normalizer": source.actor_normalizer, "privileged_normalizer": source.privileged_normalizer}


class FrozenTeacher(nn.Module):
    """``forward(raw policy, raw privileged)``: the teacher's deterministic action, normalization included."""

    # the copies of teacher_parts, added in __init__
    actor: nn.Module
    privilege_encoder: nn.Module
    policy_normalizer: nn.Module
    privileged_normalizer: nn.Module

    def __init__(self, source: ActorCriticTS) -> None:
        super().__init__()
        for name, module in teacher_parts(source).items():
            self.add_module(name, copy.deepcopy(module))
        self.requires_grad_(False)

    @torch.no_grad()
    def copy_from(self, source: ActorCriticTS) -> None:
        """Take the current weights and normalizer statistics of ``source``'s teacher."""
        for name, module in teacher_parts(source).items():
            getattr(self, name).load_state_dict(module.state_dict())

    def forward(self, raw_policy: torch.Tensor, raw_privileged: torch.Tensor) -> torch.Tensor:
        latent = self.privilege_encoder(self.privileged_normalizer(raw_privileged))
        return self.actor(torch.cat([self.policy_normalizer(raw_policy), latent], dim=-1))
