"""Data-parallel training under Lightning's DDP: 2 CPU processes (gloo), launched through tests/ddp_fit.py.

The DDP run is compared with a single-process loop that steps both ranks' envs, each with its own torch RNG
stream, and averages the two ranks' gradients every mini-batch. Checkpoints are resumed on 2 and on 1 rank.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from ddp_fit import CHECKPOINT_EVERY, ENV_SEED, NUM_ENVS, SEED, fit, make_method, rank_dependent_env
from torch import nn

from leggedex.data import EpisodeTracker, collect_rollout

from conftest import REPO, flat_parameters

WORLD = 2
ITERATIONS = 4
TIMEOUT_S = 180


def run_to_completion(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``command`` in a session of its own (so that a hung run is killed with the ranks Lightning started from
    it); fail the test on a hang or a non-zero exit; return the output."""
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"the DDP run did not finish in {TIMEOUT_S} s:\n{output[-4000:]}")
    assert proc.returncode == 0, output[-4000:]
    return output


def launch_ddp(out: Path, *args: str) -> list[dict[str, Any]]:
    """Run tests/ddp_fit.py on 2 ranks and return each rank's record."""
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(REPO / "tests" / "ddp_fit.py"), "--out", str(out), "--devices", str(WORLD),
               "--iterations", str(ITERATIONS), *args]
    run_to_completion(command, REPO)
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(WORLD)]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """2 ranks x 4 iterations, checkpoints after 2 and 4."""
    out = tmp_path_factory.mktemp("ddp")
    return out, launch_ddp(out)


def assert_same_training_state(a: dict[str, Any], b: dict[str, Any], exact: bool = True) -> None:
    def same(x: torch.Tensor, y: torch.Tensor, what: str) -> None:
        if exact:
            assert torch.equal(x, y), what
        else:
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-6, msg=what)

    same(a["params"], b["params"], "parameters")
    assert a["normalizers"].keys() == b["normalizers"].keys() and a["normalizers"]
    for key in a["normalizers"]:
        same(a["normalizers"][key], b["normalizers"][key], key)
    assert a["lr"] == b["lr"]
    assert len(a["adam"]) == len(b["adam"])
    for x, y in zip(a["adam"], b["adam"]):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            same(x[key].to(torch.float64), y[key].to(torch.float64), f"Adam {key}")


def assert_same_env_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    for key in ("env", "obs", "tracker"):
        assert a[key].keys() == b[key].keys()
        for name, value in a[key].items():
            if isinstance(value, dict):
                assert all(torch.equal(value[k], b[key][name][k]) for k in value), f"{key}.{name}"
            else:
                assert torch.equal(value, b[key][name]), f"{key}.{name}"


def test_ranks_start_and_stay_identical_with_their_own_envs(ddp_run) -> None:
    _, ranks = ddp_run
    assert [r["world_size"] for r in ranks] == [WORLD, WORLD]
    assert torch.equal(ranks[0]["start"]["params"], ranks[1]["start"]["params"])  # DDP broadcast rank 0's weights
    assert_same_training_state(ranks[0]["end"], ranks[1]["end"])
    assert not torch.equal(ranks[0]["start"]["rng"], ranks[1]["start"]["rng"])  # own action noise per rank
    for rank, record in enumerate(ranks):  # each rank stepped its own env, seeded ENV_SEED + rank
        fresh = rank_dependent_env(NUM_ENVS, ENV_SEED + rank, "cpu")
        with torch.inference_mode():
            fresh.reset()
        assert torch.equal(record["start"]["env"]["goal"], fresh.goal)


@contextmanager
def rank_rng(states: list[torch.Tensor], rank: int) -> Iterator[None]:
    """Run with rank ``rank``'s torch RNG stream."""
    torch.set_rng_state(states[rank])
    try:
        yield
    finally:
        states[rank] = torch.get_rng_state()


def averaged_gradients_reference(iterations: int) -> dict[str, Any]:
    """The DDP run computed in one process, without Lightning and without torch.distributed."""
    rng, built = [], []
    spec = rank_dependent_env(1, ENV_SEED, "cpu").obs_spec
    for rank in range(WORLD):
        torch.manual_seed(SEED + rank)  # as OnPolicyMethod.configure_model seeds each rank
        built.append(make_method(schedule="fixed"))  # the loop below adapts the learning rate on both ranks' KL
        built[rank].build(spec)
        rng.append(torch.get_rng_state())
    method = built[0]  # DDP broadcasts rank 0's initial weights
    envs = [rank_dependent_env(NUM_ENVS, ENV_SEED + rank, "cpu") for rank in range(WORLD)]
    with torch.inference_mode():
        obs = [env.reset() for env in envs]
    trackers = [EpisodeTracker(NUM_ENVS, env.device) for env in envs]
    storages = [method.build_storage(NUM_ENVS) for _ in range(WORLD)]
    optimizer = method.configure_optimizers()
    hp, params, normalizers = method.hparams, list(method.parameters()), method.normalizers()
    rewards = []
    for iteration in range(iterations):
        method.plain_iteration = iteration
        rollouts, pending = [], []
        for rank in range(WORLD):
            method.storage = storages[rank]
            with rank_rng(rng, rank):
                rollouts.append(collect_rollout(envs[rank], method, obs[rank], trackers[rank]))
            obs[rank] = rollouts[rank].last_obs
            pending.append([n._pending for n in normalizers])  # each rank's own sums, as the all-reduce sees them
            for n in normalizers:
                n._pending = None
        for storage, rollout in zip(storages, rollouts):
            method.compute_returns(storage, rollout.last_obs)
        for n, rank_sums in zip(normalizers, zip(*pending)):
            n._pending = sum(rank_sums[1:], rank_sums[0])
            n.commit()

        batches = [storage.mini_batches(hp.num_mini_batches, hp.num_learning_epochs, shuffle=hp.mini_batch_shuffle)
                   for storage in storages]
        for _ in range(hp.num_mini_batches * hp.num_learning_epochs):
            mini = []
            for rank in range(WORLD):
                with rank_rng(rng, rank):  # each rank shuffles its rollout with its own stream
                    mini.append(next(batches[rank]))
            new = [method.actor_critic.distribution(b.obs["policy"]) for b in mini]
            method.adapt_learning_rate(  # the KL averaged over the equal-sized mini-batches of both ranks
                torch.cat([b.action_mean for b in mini]), torch.cat([b.action_std for b in mini]),
                torch.cat([d.mean for d in new]), torch.cat([d.stddev for d in new]), optimizer,
            )
            grads = []
            for batch in mini:
                losses = method.ppo_losses(batch, optimizer)
                loss = (losses["surrogate"] + hp.value_loss_coef * losses["value_function"]
                        - hp.entropy_coef * losses["entropy"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grads.append([p.grad.clone() for p in params])
            for p, *rank_grads in zip(params, *grads):
                p.grad = sum(g / WORLD for g in rank_grads)
            for group in method.clip_groups(optimizer) or [params]:  # the method's gradient-norm clipping
                nn.utils.clip_grad_norm_(group, hp.max_grad_norm)
            optimizer.step()
        for storage in storages:
            storage.clear()
        rewards.append(torch.cat([r.episode_returns for r in rollouts]))
    return {
        "params": flat_parameters(method),
        "normalizers": {k: v.clone() for k, v in method.state_dict().items() if "normalizer" in k},
        "lr": optimizer.param_groups[0]["lr"],
        "adam": [optimizer.state[p] for p in params],
        "episode_returns": rewards,
    }


def test_ddp_equals_one_process_averaging_both_ranks_gradients(ddp_run) -> None:
    _, ranks = ddp_run
    reference = averaged_gradients_reference(ITERATIONS)
    assert_same_training_state(ranks[0]["end"], reference, exact=False)
    # logged once per iteration, reduced over both ranks (rank 1 finishes episodes only in iteration 2)
    steps_per_rank = NUM_ENVS * make_method().num_steps_per_env
    for logged, returns in zip(ranks[0]["logged"], reference["episode_returns"]):
        assert logged["total_steps"] == WORLD * steps_per_rank  # what Perf/total_fps counts
        assert logged["Train/mean_reward"] == pytest.approx(float(returns.mean()), rel=1e-5, abs=1e-7)
    assert len(reference["episode_returns"][2]) > len(reference["episode_returns"][1])


def without_timings(logged: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in entry.items() if not k.startswith("Perf/")} for entry in logged]


def test_ddp_checkpoint_resumes_exactly_on_two_ranks(ddp_run, tmp_path) -> None:
    out, uninterrupted = ddp_run
    resumed = launch_ddp(tmp_path, "--ckpt_path", str(out / "checkpoints" / f"model_{CHECKPOINT_EVERY}.ckpt"))
    for a, b in zip(uninterrupted, resumed):
        assert_same_training_state(a["end"], b["end"])
        assert_same_env_state(a["end"], b["end"])
        assert torch.equal(a["end"]["rng"], b["end"]["rng"])
        assert without_timings(a["logged"][CHECKPOINT_EVERY:]) == without_timings(b["logged"])


def test_symmetry_under_ddp_keeps_the_ranks_identical_and_the_normalizers_symmetric(tmp_path) -> None:
    ranks = launch_ddp(tmp_path, "--symmetry")
    assert_same_training_state(ranks[0]["end"], ranks[1]["end"])
    mirror = rank_dependent_env(NUM_ENVS, ENV_SEED, "cpu").mirror()
    normalizers = ranks[0]["end"]["normalizers"]
    mean = next(v for k, v in normalizers.items() if k.endswith("actor_normalizer.mean"))
    torch.testing.assert_close(mirror.groups["policy"].apply(mean), mean, atol=1e-6, rtol=0)
    assert any(k.startswith("Loss/symmetry") for k in ranks[0]["logged"][-1])


def test_recurrent_ppo_under_ddp_keeps_the_ranks_identical_and_checkpoints_each_ranks_states(tmp_path) -> None:
    ranks = launch_ddp(tmp_path, "--recurrent")
    assert_same_training_state(ranks[0]["end"], ranks[1]["end"])
    assert not torch.equal(ranks[0]["states"]["actor_h"], ranks[1]["states"]["actor_h"])  # each rank's own envs
    saved = torch.load(tmp_path / "checkpoints" / f"model_{ITERATIONS}.ckpt", weights_only=False)
    for rank, record in enumerate(ranks):
        for name, state in record["states"].items():
            assert torch.equal(saved["leggedex"]["recurrent_states"][rank][name], state), (rank, name)


def test_ddp_checkpoint_resumes_on_one_rank_with_rank_zeros_env(ddp_run, tmp_path) -> None:
    out, _ = ddp_run
    ckpt_path = out / "checkpoints" / f"model_{CHECKPOINT_EVERY}.ckpt"
    checkpoint = torch.load(ckpt_path, weights_only=False)
    saved = checkpoint["OnPolicyDataModule"]["ranks"]
    assert len(saved) == len(checkpoint["leggedex"]["rng"]) == WORLD
    record = fit(tmp_path, devices=1, iterations=ITERATIONS, ckpt_path=str(ckpt_path))
    assert_same_env_state(record["start"], saved[0])
    assert torch.equal(record["start"]["rng"], checkpoint["leggedex"]["rng"][0]["torch"])
    assert len(record["logged"]) == ITERATIONS - CHECKPOINT_EVERY
    assert torch.isfinite(record["end"]["params"]).all()


def test_one_rank_checkpoint_resumes_on_two_ranks_with_a_fresh_second_env(tmp_path) -> None:
    single = fit(tmp_path / "single", devices=1, iterations=CHECKPOINT_EVERY)
    ckpt_path = tmp_path / "single" / "checkpoints" / "last.ckpt"
    ranks = launch_ddp(tmp_path / "ddp", "--ckpt_path", str(ckpt_path))
    assert_same_env_state(ranks[0]["start"], single["end"])
    assert torch.equal(ranks[0]["start"]["params"], single["end"]["params"])
    fresh = rank_dependent_env(NUM_ENVS, ENV_SEED + 1, "cpu")
    with torch.inference_mode():
        fresh_obs = fresh.reset()
    assert torch.equal(ranks[1]["start"]["env"]["goal"], fresh.goal)
    assert torch.equal(ranks[1]["start"]["obs"]["critic"], fresh_obs["critic"])
    assert torch.equal(ranks[1]["start"]["params"], single["end"]["params"])
    assert_same_training_state(ranks[0]["end"], ranks[1]["end"])


def test_go2_config_trains_under_ddp_with_rank_zero_evaluation(tmp_path: Path) -> None:
    """The user's command on 2 gloo processes; rank 0 alone evaluates, and no collective is left waiting."""
    command = [sys.executable, "-m", "leggedex.cli", "fit", "--config", str(REPO / "configs" / "go2_flat.yaml"),
               "--data.num_envs", "8", "--model.num_steps_per_env", "4", "--trainer.max_epochs", "2",
               "--data.env.init_args.backend.init_args.num_threads", "1", "--torch_threads", "1",
               "--trainer.accelerator", "cpu",
               "--trainer.strategy", "ddp", "--trainer.devices", "2", "--experiment", "ddp_go2"]
    run_to_completion(command, tmp_path, {**os.environ, "LEGGEDEX_RUN_STAMP": "2026-01-01_00-00-00"})
    run = tmp_path / "logs" / "ddp_go2" / "2026-01-01_00-00-00"
    assert (run / "evaluations" / "iteration_2.json").exists()
    assert (run / "checkpoints" / "last.ckpt").exists()
