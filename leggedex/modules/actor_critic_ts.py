"""The teacher-student actor-critic: one actor shared by a teacher (privileged latent) and a student (history latent).

- teacher: ``actor([policy, privilege_encoder(privileged)])``, trained by PPO together with the privilege encoder;
- student: ``actor([policy, history_encoder(history)])``, the deployed policy; its history encoder is trained
  separately to reproduce the teacher's latent (``TeacherStudentPPO``);
- critic: ``critic(critic)``.

As in ``ActorCritic``, networks take normalized observations and the normalizers live here: ``policy`` and
``critic`` have theirs, ``privileged`` its own, and ``history`` (the last N policy frames) is normalized frame by
frame with the policy normalizer. ``student_action`` takes raw observations (the deploy policy).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.distributions import Normal

from leggedex.modules.actor_critic import ActorCritic
from leggedex.modules.mlp import MLP
from leggedex.modules.normalizer import EmpiricalNormalizer, normalize_frames
from leggedex.modules.tcn import TCNEncoder

HistoryEncoderType = Literal["mlp", "tcn"]


class ActorCriticTS(ActorCritic):
    """See the module docstring; ``latent_dim`` None means the privileged size (the real go2_ts)."""

    def __init__(
        self,
        num_policy_obs: int,
        num_privileged_obs: int,
        num_history_obs: int,
        num_critic_obs: int,
        num_actions: int,
        latent_dim: int | None = None,
        actor_hidden_dims: list[int] | tuple[int, ...] = (512, 256, 128),
        critic_hidden_dims: list[int] | tuple[int, ...] = (1024, 256, 128),
        privilege_encoder_hidden_dims: list[int] | tuple[int, ...] = (256, 128),
        history_encoder_hidden_dims: list[int] | tuple[int, ...] = (256, 128),
        history_encoder_type: HistoryEncoderType = "mlp",
        activation: str = "elu",
        init_noise_std: float = 1.0,
        min_std: float = 1e-3,
        empirical_normalization: bool = False,
    ) -> None:
        if num_history_obs % num_policy_obs:
            raise ValueError(f"the history group ({num_history_obs}) must hold whole policy frames "
                             f"({num_policy_obs} each)")
        if history_encoder_type not in ("mlp", "tcn"):
            raise ValueError(f"history_encoder_type must be 'mlp' or 'tcn', got {history_encoder_type!r}")
        latent_dim = num_privileged_obs if latent_dim is None else latent_dim
        if latent_dim <= 0:
            raise ValueError(f"latent_dim must be positive, got {latent_dim}")
        super().__init__(num_policy_obs, num_critic_obs, num_actions, actor_hidden_dims, critic_hidden_dims,
                         activation, init_noise_std, min_std, empirical_normalization, actor_latent_dim=latent_dim)
        self.num_policy_obs = num_policy_obs
        self.latent_dim = latent_dim
        self.history_length = num_history_obs // num_policy_obs
        self.privilege_encoder = MLP(num_privileged_obs, latent_dim, privilege_encoder_hidden_dims, activation)
        self.history_encoder: nn.Module = (
            MLP(num_history_obs, latent_dim, history_encoder_hidden_dims, activation)
            if history_encoder_type == "mlp"
            else TCNEncoder(num_policy_obs, self.history_length, latent_dim, history_encoder_hidden_dims, activation)
        )
        self.privileged_normalizer: nn.Module = (
            EmpiricalNormalizer(num_privileged_obs) if empirical_normalization else nn.Identity()
        )

    def normalize_history(self, raw_history: torch.Tensor) -> torch.Tensor:
        return normalize_frames(self.actor_normalizer, raw_history, self.num_policy_obs)

    def teacher_latent(self, privileged: torch.Tensor) -> torch.Tensor:
        return self.privilege_encoder(privileged)

    def student_latent(self, history: torch.Tensor) -> torch.Tensor:
        return self.history_encoder(history)

    def teacher_distribution(self, policy: torch.Tensor, privileged: torch.Tensor) -> Normal:
        """The teacher's action distribution on normalized ``policy`` and ``privileged`` observations."""
        return self.distribution(torch.cat([policy, self.teacher_latent(privileged)], dim=-1))

    def student_distribution(self, policy: torch.Tensor, history: torch.Tensor) -> Normal:
        """The student's action distribution on normalized ``policy`` and ``history`` observations."""
        return self.distribution(torch.cat([policy, self.student_latent(history)], dim=-1))

    def student_action(self, raw_policy: torch.Tensor, raw_history: torch.Tensor) -> torch.Tensor:
        """The deterministic deploy policy on raw observations (normalization included)."""
        latent = self.student_latent(self.normalize_history(raw_history))
        return self.actor(torch.cat([self.actor_normalizer(raw_policy), latent], dim=-1))

    def act_inference(self, raw_actor_obs: torch.Tensor) -> torch.Tensor:
        raise TypeError("ActorCriticTS deploys the student: call student_action(policy, history)")
