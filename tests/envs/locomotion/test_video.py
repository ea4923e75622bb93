"""Offscreen video of a policy (needs OSMesa: .ci/run installs libosmesa6)."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import torch

from leggedex.envs import LeggedLocomotion
from leggedex.envs.locomotion.video import render_rollout, write_mp4

from conftest import one_thread_backend


def test_render_rollout_follows_the_robot_and_writes_an_mp4(tmp_path) -> None:
    env = LeggedLocomotion(2, seed=0, backend=one_thread_backend, random_initial_episode_length=False)
    frames = render_rollout(env, lambda obs: torch.zeros(2, 12), duration_s=0.4, width=96, height=64)
    assert frames.shape == (20, 64, 96, 3) and frames.dtype == np.uint8
    assert frames.std() > 5  # a scene, not a blank image
    assert env.commands.fixed is None  # training settings restored
    path = write_mp4(frames, tmp_path / "clip.mp4", fps=50)
    assert imageio.mimread(path, memtest=False)[0].shape == (64, 96, 3)


def test_video_callback_writes_a_clip_per_period(tmp_path) -> None:
    from functools import partial

    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from callbacks import VideoRecorder
    from leggedex.data import OnPolicyDataModule

    from conftest import make_ppo, make_trainer

    recorder = VideoRecorder(every_n_iterations=1, duration_s=0.2, width=64, height=48)
    datamodule = OnPolicyDataModule(env=partial(LeggedLocomotion, backend=one_thread_backend), num_envs=4, seed=0)
    trainer = make_trainer(2, callbacks=[recorder], logger=TensorBoardLogger(tmp_path, name="run", version="v"))
    trainer.fit(make_ppo(num_steps_per_env=4), datamodule=datamodule)
    videos = sorted(p.name for p in (tmp_path / "run" / "v" / "videos").iterdir())
    assert videos == ["iteration_1.mp4", "iteration_2.mp4"]
    assert len(imageio.mimread(recorder.written[-1], memtest=False)) == 10
    events = EventAccumulator(str(tmp_path / "run" / "v"), size_guidance={"images": 0})
    events.Reload()
    gifs = events.Images("Video/policy")
    assert [g.step for g in gifs] == [1, 2] and gifs[0].encoded_image_string[:6] == b"GIF89a"


def test_the_camera_looks_at_the_robot_far_from_the_origin() -> None:
    from leggedex.envs.terrain import TerrainConfig

    # tiles of 3 m: every robot stands metres away from the world origin, on a terrain whose extent would put
    # MuJoCo's default near plane beyond the camera
    terrain = TerrainConfig(num_rows=2, num_cols=5, tile_size=3.0, border=1.0, platform=1.0)
    env = LeggedLocomotion(2, seed=0, terrain=terrain, backend=one_thread_backend)
    env.reset()
    renderer = env.sim.renderer(96, 64)
    try:
        for world in range(2):
            image = renderer.render(world)
            camera = renderer._renderer.scene.camera[0]
            looked_at = np.asarray(camera.pos) + 1.6 * np.asarray(camera.forward)
            base = env.sim.root_pos[world].double().numpy()
            assert np.linalg.norm(base[:2]) > 2.0  # the test means something only away from the origin
            assert np.linalg.norm(looked_at - base) < 0.3, (world, looked_at, base)
            assert image.std() > 5
    finally:
        renderer.close()
        env.close()
