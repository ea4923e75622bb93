"""The locomotion task on the curriculum heightfield, and the teacher-student observation groups."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from leggedex.envs import LeggedLocomotion
from leggedex.envs.locomotion.config import ObservationConfig
from leggedex.envs.locomotion.ground import CurriculumTerrain
from leggedex.envs.terrain import HeightSampler, Terrain, TerrainConfig, generate_terrain

from conftest import one_thread_backend

SMALL_TERRAIN = dict(num_rows=3, num_cols=5, tile_size=3.0, border=1.0, resolution=0.1, platform=1.0)
TS_OBS = ObservationConfig(history_length=20, privileged=True, critic_privileged=True, height_scan=True,
                           critic_frames=5)


def make_env(num_envs: int = 8, terrain: TerrainConfig | None = None, **kwargs) -> LeggedLocomotion:
    kwargs.setdefault("backend", one_thread_backend)
    kwargs.setdefault("observations", ObservationConfig(**vars(TS_OBS)))
    return LeggedLocomotion(num_envs, seed=0, terrain=terrain, **kwargs)


def test_teacher_student_groups_have_the_sizes_of_go2_ts_and_come_from_one_spec() -> None:
    env = make_env()
    assert env.obs_groups == {"policy": 45, "critic": 172 * 5, "history": 20 * 45, "privileged": 94}
    contract = env.deploy_contract()["observations"]
    assert contract["privileged"]["size"] == sum(t["size"] for t in contract["privileged"]["terms"]) == 94
    assert sum(t["size"] for t in contract["critic"]["frame_terms"]) * contract["critic"]["frames"] == 860
    assert contract["history"]["frames"] == 20 and contract["history"]["frame_terms"] == contract["policy"]["terms"]
    with torch.inference_mode():
        obs = env.reset()
    assert {name: value.shape[1] for name, value in obs.items()} == env.obs_groups
    plain = LeggedLocomotion(8, seed=0, backend=one_thread_backend)
    assert plain.obs_groups == {"policy": 45, "critic": 48}  # the options are off by default


def slice_of(env: LeggedLocomotion, group: str, term: str) -> slice:
    layout = env.obs_layouts.privileged if group == "privileged" else env.obs_layouts.critic_frame
    entry = next(t for t in layout.describe() if t["name"] == term)
    return slice(entry["start"], entry["start"] + entry["size"])


def test_history_holds_the_last_policy_frames_and_is_zeroed_at_reset() -> None:
    env = make_env(episode_length_s=0.2, random_initial_episode_length=False)
    frames = []
    with torch.inference_mode():
        obs = env.reset()
        frames.append(obs["policy"])
        for _ in range(3):
            obs, _, dones, _ = env.step(torch.zeros(8, 12))
            frames.append(obs["policy"])
    history = obs["history"].reshape(8, 20, 45)
    assert torch.equal(history[:, -4:], torch.stack(frames, dim=1))  # oldest first, newest = current policy obs
    assert (history[:, :-4] == 0).all()
    with torch.inference_mode():
        for _ in range(7):  # the episode (10 steps) ends: the history restarts from the first frame
            obs, _, dones, _ = env.step(torch.zeros(8, 12))
    assert dones.all()
    history = obs["history"].reshape(8, 20, 45)
    assert torch.equal(history[:, -1], obs["policy"]) and (history[:, :-1] == 0).all()


def test_privileged_and_critic_terms_read_the_true_state() -> None:
    env = make_env()
    with torch.inference_mode():
        env.reset()
        for _ in range(30):
            obs, _, _, _ = env.step(torch.zeros(8, 12))
    priv = obs["privileged"]
    assert torch.allclose(priv[:, slice_of(env, "privileged", "base_lin_vel")], env.base_lin_vel * 2.0, atol=1e-6)
    assert torch.allclose(priv[:, slice_of(env, "privileged", "kp_scale")], env.sim.kp_scale - 1.0, atol=1e-6)
    assert torch.allclose(priv[:, slice_of(env, "privileged", "friction")], env.sim.friction.reshape(8, 1))
    # standing on flat ground: soles on the floor, normals straight up, most feet in contact
    assert priv[:, slice_of(env, "privileged", "foot_heights")].abs().max() < 0.03
    normals = priv[:, slice_of(env, "privileged", "foot_normals")].reshape(8, 4, 3)
    assert torch.allclose(normals, torch.tensor([0.0, 0.0, 1.0]).expand(8, 4, 3))
    contacts = priv[:, slice_of(env, "privileged", "foot_contact")]
    assert torch.equal(contacts, env.foot_contact.float()) and contacts.sum() >= 24
    # the newest critic frame: the noise-free policy terms, then the base velocity, ..., the height scan
    frame = obs["critic"].reshape(8, 5, 172)[:, -1]
    assert torch.allclose(frame[:, :45], obs["policy"], atol=0.2) and not torch.equal(frame[:, :45], obs["policy"])
    scan = frame[:, slice_of(env, "critic", "height_scan")] / 5.0
    expected = (env.base_pos[:, 2] - 0.3).clamp(-1, 1)
    assert torch.allclose(scan, expected[:, None].expand_as(scan), atol=1e-5)


def test_sampler_normals_and_heights_on_an_inclined_plane() -> None:
    resolution = 0.1
    x = (np.arange(60) + 0.5) * resolution
    heights = np.repeat((0.2 * x)[:, None], 40, axis=1)
    terrain = Terrain(heights, resolution, 0.0, np.zeros((1, 1, 3)), ["smooth_slope"])
    sampler = HeightSampler(terrain)
    points = torch.tensor([[2.03, 1.5], [3.71, 2.2]])
    assert torch.allclose(sampler(points), 0.2 * points[:, 0], atol=1e-5)
    expected = torch.tensor([-0.2, 0.0, 1.0]) / math.sqrt(1.04)
    assert torch.allclose(sampler.normals(points), expected.expand(2, 3), atol=1e-5)


def test_robots_spawn_on_their_tiles_and_stand_on_the_heightfield() -> None:
    cfg = TerrainConfig(**SMALL_TERRAIN, max_init_level=2)
    env = make_env(num_envs=10, terrain=cfg)
    ground = env.ground
    assert isinstance(ground, CurriculumTerrain)
    assert set(ground.types.tolist()) == set(range(5))
    with torch.inference_mode():
        env.reset()
        origins = ground.spawn_origins(torch.arange(10))
        assert ((env.base_pos[:, :2] - origins[:, :2]).abs() <= ground.spawn_radius + 1e-5).all()
        for _ in range(50):
            _, _, dones, _ = env.step(torch.zeros(10, 12))
            assert not (dones & ~env.time_outs).any()
    # base height is measured from the ground under the feet, so it is the standing height on every tile
    assert ((env.base_height > 0.2) & (env.base_height < 0.4)).all()
    assert "terrain_level" in env.episode_keys


def test_terrain_curriculum_follows_the_legged_gym_rule() -> None:
    cfg = TerrainConfig(**SMALL_TERRAIN, max_init_level=1)
    grid = generate_terrain(cfg)
    gen = torch.Generator().manual_seed(0)
    ground = CurriculumTerrain(cfg, grid, 4, torch.device("cpu"), gen)
    ground.levels[:] = torch.tensor([0, 1, 1, 2])
    ids = torch.arange(4)
    walked = torch.tensor([2.0, 0.2, 1.0, 2.0])  # half a tile is 1.5 m
    commanded = torch.tensor([4.0, 4.0, 1.0, 1.0])  # a level down below half of the commanded distance
    ground.update_curriculum(ids, walked, commanded, gen)
    assert ground.levels[:3].tolist() == [1, 0, 1]
    assert 0 <= int(ground.levels[3]) < 3  # passed the top level: a random level
    ground.levels[:] = 0
    ground.update_curriculum(ids, torch.zeros(4), torch.full((4,), 4.0), gen)
    assert (ground.levels == 0).all()  # never below the first level


def test_leaving_the_terrain_ends_the_episode_as_a_time_out() -> None:
    env = make_env(num_envs=2, terrain=TerrainConfig(**SMALL_TERRAIN))
    with torch.inference_mode():
        env.reset()
        position = env.base_pos.clone()
        position[0, :2] = 0.5  # within a metre of the edge
        env.sim.reset(torch.tensor([0]), position[:1], env.base_quat[:1], torch.zeros(1, 3), torch.zeros(1, 3),
                      env.dof_pos[:1], env.dof_vel[:1])
        _, _, dones, extras = env.step(torch.zeros(2, 12))
    assert dones.tolist() == [True, False] and extras["time_outs"].tolist() == [True, False]


def test_state_dict_resumes_the_teacher_student_groups_exactly() -> None:
    env = make_env(terrain=TerrainConfig(**SMALL_TERRAIN))
    actions = torch.randn(6, 8, 12, generator=torch.Generator().manual_seed(0)) * 0.3
    with torch.inference_mode():
        env.reset()
        for a in actions[:3]:
            env.step(a)
        state = env.state_dict()
        ahead = [env.step(a)[0] for a in actions[3:]]
        other = make_env(terrain=TerrainConfig(**SMALL_TERRAIN))
        other.reset()
        other.load_state_dict(state)
        again = [other.step(a)[0] for a in actions[3:]]
    for first, second in zip(ahead, again):
        assert first.keys() == second.keys()
        assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("bad", [dict(history_length=-1), dict(critic_frames=0), dict(height_scan_points=(9,))])
def test_bad_observation_options_are_named(bad: dict) -> None:
    with pytest.raises(ValueError, match="observations\\."):
        make_env(observations=ObservationConfig(**bad))
