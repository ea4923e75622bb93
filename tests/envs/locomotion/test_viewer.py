"""The interactive viewer's loop: keys change the held command, the overlay shows it, the camera tracks the base."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import mujoco
import pytest
import torch

from leggedex.envs import LeggedLocomotion
from leggedex.envs.locomotion.viewer import KEY_SPACE, KeyboardCommand, check_viewer_support, run_viewer

from conftest import one_thread_backend

UP, DOWN, LEFT, COMMA = 265, 264, 263, 44


def test_keys_step_the_command_and_space_stops() -> None:
    keys = KeyboardCommand((0.5, 0.0, 0.0), limit=0.7)
    for key in (UP, UP, UP, COMMA, LEFT, LEFT, 999):
        keys.press(key)
    assert keys.command == [0.7, 0.1, 0.2]  # vx clipped at the limit; unknown keys ignored
    keys.press(DOWN)
    assert keys.command == [0.6, 0.1, 0.2]
    keys.press(KEY_SPACE)
    assert keys.command == [0.0, 0.0, 0.0]


class FakeViewer:
    """What run_viewer uses of MuJoCo's passive viewer; presses keys at given steps."""

    def __init__(self, key_callback, presses: dict[int, list[int]]) -> None:
        self.key_callback, self.presses = key_callback, presses
        self.cam = SimpleNamespace(type=None, trackbodyid=None, distance=None, elevation=None)
        self.texts: list = []
        self.syncs = 0

    def close(self) -> None:
        self.closed = True

    def is_running(self) -> bool:
        return True

    def lock(self):
        return contextlib.nullcontext()

    def set_texts(self, texts) -> None:
        self.texts.append(texts)

    def sync(self) -> None:
        self.syncs += 1
        for key in self.presses.get(self.syncs, []):
            self.key_callback(key)


def test_the_viewer_holds_the_keyboard_command_and_shows_it() -> None:
    env = LeggedLocomotion(1, seed=0, backend=one_thread_backend, random_initial_episode_length=False)
    seen_commands = []

    def policy(obs):
        seen_commands.append(env.commands.command[0].tolist())
        return torch.zeros(1, 12)

    viewers = []

    def launch(model, data, key_callback):
        viewers.append(FakeViewer(key_callback, {2: [UP, LEFT]}))
        return viewers[0]

    steps = run_viewer(env, policy, (0.3, 0.0, 0.0), duration_s=0.1, launch=launch)
    viewer = viewers[0]
    assert steps == 5 and viewer.syncs == 5
    assert viewer.cam.type == mujoco.mjtCamera.mjCAMERA_TRACKING and viewer.cam.trackbodyid == env.sim.index.base_body
    assert seen_commands[:2] == [pytest.approx([0.3, 0.0, 0.0])] * 2
    assert seen_commands[2:] == [pytest.approx([0.4, 0.0, 0.1])] * 3  # the keys pressed after step 2
    assert viewer.texts[-1][3].startswith("+0.4 +0.0 +0.1\n") and "\n5\n" in viewer.texts[-1][3]
    assert env.commands.fixed is None and viewer.closed  # training commands restored, window closed


def test_the_viewer_draws_with_clipping_planes_in_metres_and_tracks_the_base() -> None:
    from leggedex.envs.backends.mujoco_base import DISPLAY_CLIP_M

    env = LeggedLocomotion(1, seed=0, backend=one_thread_backend, random_initial_episode_length=False)
    launched = []

    def launch(model, data, key_callback):
        launched.append((model, data))
        return FakeViewer(key_callback, {})

    run_viewer(env, lambda obs: torch.zeros(1, 12), duration_s=0.1, launch=launch)
    model, data = launched[0]
    assert model.vis.map.znear * model.stat.extent == pytest.approx(DISPLAY_CLIP_M[0])
    assert model.vis.map.zfar * model.stat.extent == pytest.approx(DISPLAY_CLIP_M[1])
    # the tracking camera looks at the base's subtree centre of mass: it must be where the robot is
    base = env.sim.index.base_body
    assert data.subtree_com[base] == pytest.approx(env.sim.root_pos[0].double().numpy(), abs=0.1)


def test_the_viewer_needs_a_display(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="needs a display"):
        check_viewer_support()
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("MUJOCO_GL", "egl")
    with pytest.raises(RuntimeError, match="GLFW"):
        check_viewer_support()
