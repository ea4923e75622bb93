"""TeacherStudentPPO under Lightning's DDP with find_unused_parameters (2 gloo CPU processes, tests/ddp_fit_ts.py):
one fit of teacher iterations and then distillation iterations; the ranks, which step different envs, must hold
identical parameters, normalizer statistics, frozen teacher and optimizer states after every iteration; the same
with a recurrent student (RecurrentTeacherStudentPPO), whose per-env states differ between ranks, and with CTSPPO,
whose ranks each split their own envs into teachers and students."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch
from ddp_fit import NUM_ENVS
from ddp_fit_ts import ITERATIONS, SWITCH, WORLD
from test_ddp import run_to_completion

from conftest import REPO, SMALL_TS

FLAGS = {"mlp_student": [], "recurrent_student": ["--recurrent"], "cts": ["--cts"]}


@pytest.fixture(scope="module", params=list(FLAGS))
def ranks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("ddp_ts")
    flags = FLAGS[request.param]
    run_to_completion([sys.executable, str(REPO / "tests" / "ddp_fit_ts.py"), "--out", str(out), *flags], REPO)
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(WORLD)]


def part(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state_dict.items() if k.startswith(prefix)}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ranks_stay_identical_through_the_teacher_and_the_distillation_phase(ranks) -> None:
    first, second = ranks
    assert [r["world_size"] for r in ranks] == [WORLD, WORLD]
    assert [s["phase"] for s in first["states"]] == ["teacher"] * SWITCH + ["distillation"] * (ITERATIONS - SWITCH)
    for iteration, (a, b) in enumerate(zip(first["states"], second["states"])):
        assert a["phase"] == b["phase"] and a["lr"] == b["lr"], iteration
        mismatched = [k for k in a["state_dict"] if not torch.equal(a["state_dict"][k], b["state_dict"][k])]
        assert not mismatched, (iteration, mismatched)
        assert len(a["adam"]) == len(b["adam"]) == 3
        for x, y in zip(a["adam"], b["adam"]):
            assert len(x) == len(y) and all(same(s, t) for s, t in zip(x, y)), iteration
        assert not torch.equal(a["rng"], b["rng"])  # each rank samples its own action noise
    if first["teacher_envs"] is not None:  # CTS: each rank's first 3/4 envs are its teachers
        expected = [True] * (NUM_ENVS * 3 // 4) + [False] * (NUM_ENVS // 4)
        assert first["teacher_envs"].tolist() == second["teacher_envs"].tolist() == expected
    for name, state in first["recurrent_states"].items():  # each rank's student follows its own envs
        assert not torch.equal(state, second["recurrent_states"][name]), name


def test_each_phase_trains_what_it_should_on_every_rank(ranks) -> None:
    states = [s["state_dict"] for s in ranks[0]["states"]]
    history = [part(s, "actor_critic.history_encoder.") for s in states]
    assert all(not same(history[i], history[i + 1]) for i in range(ITERATIONS - 1))  # trained in both phases
    privileged = [s["actor_critic.privileged_normalizer.count"] for s in states]
    assert all(privileged[i] < privileged[i + 1] for i in range(ITERATIONS - 1))  # folded in, all-reduced
    teacher_end = states[SWITCH - 1]
    assert not same(part(teacher_end, "actor_critic.critic."), part(states[0], "actor_critic.critic."))
    for state in states[SWITCH:]:
        # no PPO in the distillation phase: the critic and the privilege encoder keep the teacher's weights
        for prefix in ("actor_critic.critic.", "actor_critic.privilege_encoder.", "actor_critic.std"):
            assert same(part(state, prefix), part(teacher_end, prefix)), prefix
        # the frozen teacher is the teacher of the switch
        for frozen, live in (("actor.", "actor."), ("privilege_encoder.", "privilege_encoder."),
                             ("privileged_normalizer.", "privileged_normalizer."),
                             ("policy_normalizer.", "actor_normalizer.")):
            copy = {k.removeprefix("frozen_teacher." + frozen): v
                    for k, v in part(state, "frozen_teacher." + frozen).items()}
            source = {k.removeprefix("actor_critic." + live): v
                      for k, v in part(teacher_end, "actor_critic." + live).items()}
            assert copy and same(copy, source), frozen
    assert not same(part(states[-1], "actor_critic.actor."), part(teacher_end, "actor_critic.actor."))
    logged = ranks[0]["logged"]
    assert [entry["Train/phase"] for entry in logged] == [0.0] * SWITCH + [1.0] * (ITERATIONS - SWITCH)
    assert all("Loss/distillation" in entry for entry in logged[SWITCH:])
    assert all(entry["total_steps"] == WORLD * NUM_ENVS * SMALL_TS["num_steps_per_env"] for entry in logged)
