"""The task's left-right mirror: an involution on every group, built from the layouts' term names, and true to the
simulator: a robot put in the mirror image of another's state (rolled to one side, moving, turning) observes the
mirror of what the other observes, and keeps doing so under mirrored actions."""

from __future__ import annotations

import pytest
import torch

from leggedex.envs import LeggedLocomotion
from leggedex.envs.locomotion.config import EventConfig, ObservationConfig
from leggedex.envs.locomotion.mirror import MirrorUnavailable, other_side
from leggedex.envs.mirror import Mirror, SignedPermutation
from leggedex.envs.point_mass import PointMassReach

from conftest import one_thread_backend

STILL = {"reset_joints": {"position_scale": [1.0, 1.0], "soft_limit": 0.9},
         "reset_base": {"max_yaw": 0.0, "max_velocity": 0.0, "height_offset": 0.0}}
RICH = ObservationConfig(history_length=3, height_scan=True, critic_frames=2)


def test_every_group_of_both_tasks_mirrors_as_an_involution() -> None:
    for env in (LeggedLocomotion(2, backend=one_thread_backend, observations=RICH),
                PointMassReach(2, privileged=True, history_length=2)):
        mirror = env.mirror()
        assert set(mirror.groups) == set(env.obs_groups)
        for name, part in mirror.groups.items():
            assert len(part) == env.obs_groups[name] and part.is_involution(), name
        assert mirror.actions.is_involution()
        assert Mirror.from_dict(env.obs_spec.extras["mirror"]) == mirror
    go2 = LeggedLocomotion(2, backend=one_thread_backend).mirror()
    assert go2.actions.index == (3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8)
    assert [i for i, s in enumerate(go2.actions.sign) if s < 0] == [0, 3, 6, 9]  # the hips
    assert go2.groups["policy"].sign[:9] == (1, -1, -1, 1, -1, 1, -1, 1, -1)  # command, gravity, angular velocity


def test_a_term_without_a_mirror_is_named_and_bad_permutations_are_refused() -> None:
    env = LeggedLocomotion(2, backend=one_thread_backend, observations=ObservationConfig(privileged=True))
    assert "'push_vel' has no left-right mirror" in env.obs_spec.extras["mirror_unavailable"]
    with pytest.raises(MirrorUnavailable, match="'hip' names no left or right leg"):
        other_side("hip")
    with pytest.raises(ValueError, match="not a permutation"):
        SignedPermutation((0, 0), (1.0, 1.0))


def _mirrored_state(env: LeggedLocomotion, mirror: Mirror) -> None:
    """World 1 := the mirror image of world 0 (base pose, velocities, joints, last action, command)."""
    sim = env.sim
    pos, quat = sim.root_pos[:1], sim.root_quat[:1]
    lin, ang = sim.root_lin_vel_world[:1], sim.root_ang_vel_world[:1]
    flip = torch.tensor([1.0, -1.0, 1.0])
    joints = mirror.actions.apply
    sim.reset(torch.tensor([1]), pos * flip, quat * torch.tensor([1.0, -1.0, 1.0, -1.0]), lin * flip, -ang * flip,
              joints(sim.dof_pos[:1]), joints(sim.dof_vel[:1]))


def test_a_mirrored_robot_observes_the_mirror_of_the_observation() -> None:
    env = LeggedLocomotion(2, seed=3, backend=one_thread_backend, observations=RICH,
                           events=EventConfig(terms=STILL))
    mirror = env.mirror()
    command = torch.tensor([[0.6, 0.3, 0.5]])
    env.set_evaluation_commands(torch.cat([command, command * torch.tensor([1.0, -1.0, -1.0])]))
    env.reset()
    gen = torch.Generator().manual_seed(0)
    sim = env.sim  # world 0 rolled 0.3 rad onto its left side, moving sideways and turning, joints off home
    roll = torch.tensor([[torch.cos(torch.tensor(0.15)), torch.sin(torch.tensor(0.15)), 0.0, 0.0]])
    joints = sim.default_dof_pos[None] + 0.2 * torch.randn(1, 12, generator=gen)
    sim.reset(torch.tensor([0]), torch.tensor([[0.1, 0.2, 0.33]]), roll, torch.tensor([[0.3, -0.2, 0.0]]),
              torch.tensor([[0.2, 0.1, 0.4]]), joints, 0.5 * torch.randn(1, 12, generator=gen))
    _mirrored_state(env, mirror)
    actions = 0.5 * torch.randn(1, 12, generator=gen)
    env.actions[:] = torch.cat([actions, mirror.actions.apply(actions)])
    env._read_state()
    env._observe()
    obs = env.get_observations()
    assert bool(env.foot_contact[0].any()) and not torch.equal(env.foot_contact[0], env.foot_contact[0].flip(0))
    for name, value in obs.items():
        torch.testing.assert_close(value[1], mirror.groups[name].apply(value[0]), atol=1e-5, rtol=0, msg=name)
    for _ in range(10):  # the physics keeps the two robots mirror images under mirrored actions
        actions = 0.5 * torch.randn(1, 12, generator=gen)
        obs, _, _, _ = env.step(torch.cat([actions, mirror.actions.apply(actions)]))
    for name, value in obs.items():
        torch.testing.assert_close(value[1], mirror.groups[name].apply(value[0]), atol=2e-3, rtol=0, msg=name)
