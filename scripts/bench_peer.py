"""leggedex's PPO beside rsl_rl 5's on the same env: return and tracking at equal env-steps over seeds, throughput.

Variants (``--variants``), each run in its own process, for every seed, in an order that rotates with the seed:

- ``leggedex_joint_reshuffle``: ``leggedex fit --config CONFIG`` with legged_gym's update details
  (``grad_norm_clipping: joint``, ``mini_batch_shuffle: every_epoch``);
- ``leggedex_per_network_once``: the same with rsl_rl 5's (``grad_norm_clipping: per_network``,
  ``mini_batch_shuffle: once``);
- ``rsl_rl``: rsl_rl's ``OnPolicyRunner`` (``pip install -e ".[peer]"``: rsl-rl-lib 5.5.1) on the env the config
  builds, through an adapter, with the config's PPO and network settings, leggedex's initial weights for that seed
  (built as ``leggedex fit`` builds them), 1 torch thread while collecting and ``torch_threads`` in the update.

A run's curve holds, per iteration, the mean return of the episodes that ended in it (leggedex's
``Train/mean_reward``; for rsl_rl the same ``EpisodeTracker`` computes it), the tracking reward terms' per-second
means, and the collection and update times. The table gives, per variant, the mean over seeds (with a 95 % t
interval) of the final return (mean of the last 10 iterations), of the area under the return curve (the mean return
over all iterations) and of the env-steps per second; the plot the mean return curve with its 95 % band.

    python scripts/bench_peer.py --config configs/go2_flat.yaml --iterations 100 --seeds 1 2 3 4 5 \\
        --out docs/peer_go2_flat

Separate runs differ by several percent in speed on a shared machine, more than the libraries do; ``--interleaved``
measures throughput alone with the two libraries' iterations alternating in one process on one env:

    python scripts/bench_peer.py --config configs/go2_flat.yaml --variants leggedex_per_network_once rsl_rl \\
        --interleaved 8 --block 5
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS: dict[str, list[str]] = {
    "leggedex_joint_reshuffle": ["--model.init_args.grad_norm_clipping", "joint",
                                 "--model.init_args.mini_batch_shuffle", "every_epoch"],
    "leggedex_per_network_once": ["--model.init_args.grad_norm_clipping", "per_network",
                                  "--model.init_args.mini_batch_shuffle", "once"],
    "rsl_rl": [],
}
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}  # two-sided, by dof


# ------------------------------------------------------------------------------------------------- leggedex
def fit_args(config: str, seed: int, iterations: int, extra: list[str], log_dir: str) -> list[str]:
    return ["fit", "--config", config, "--seed_everything", str(seed), "--trainer.max_epochs", str(iterations),
            "--trainer.callbacks=[]",
            "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.init_args.save_dir", log_dir,
            *extra]


def run_leggedex(config: str, seed: int, iterations: int, extra: list[str]) -> list[dict[str, float]]:
    from leggedex.cli import main

    with tempfile.TemporaryDirectory() as log_dir:
        main(fit_args(config, seed, iterations, extra, log_dir))
        (metrics,) = Path(log_dir).rglob("metrics.csv")
        rows = list(csv.DictReader(metrics.open()))
    curve = []
    for row in rows:
        if not row.get("Train/mean_reward") and not row.get("Perf/total_fps"):
            continue
        curve.append({
            "return": float(row["Train/mean_reward"]) if row.get("Train/mean_reward") else math.nan,
            **{key.removeprefix("Episode/"): float(row[key]) for key in row if "tracking" in key and row[key]},
            "collection_s": float(row["Perf/collection time"]),
            "update_s": float(row["Perf/learning_time"]),
        })
    return curve


# --------------------------------------------------------------------------------------------------- rsl_rl
def rsl_rl_config(hp: Any) -> dict[str, Any]:
    """rsl_rl 5's runner configuration with the leggedex PPO's settings (``hp``: its hyperparameters)."""
    if hp.schedule == "adaptive" and (hp.min_learning_rate, hp.max_learning_rate) != (1e-5, 1e-2):
        raise ValueError("rsl_rl's adaptive learning rate is bounded to [1e-5, 1e-2]; the config sets other bounds")
    network = {"class_name": "MLPModel", "activation": hp.activation, "obs_normalization": hp.empirical_normalization}
    return {
        "num_steps_per_env": hp.num_steps_per_env, "save_interval": 10**9, "check_for_nan": True,
        "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "algorithm": {
            "class_name": "PPO", "num_learning_epochs": hp.num_learning_epochs, "num_mini_batches": hp.num_mini_batches,
            "clip_param": hp.clip_param, "gamma": hp.gamma, "lam": hp.lam, "value_loss_coef": hp.value_loss_coef,
            "entropy_coef": hp.entropy_coef, "learning_rate": hp.learning_rate, "max_grad_norm": hp.max_grad_norm,
            "use_clipped_value_loss": hp.use_clipped_value_loss, "schedule": hp.schedule, "desired_kl": hp.desired_kl,
            "normalize_advantage_per_mini_batch": hp.normalize_advantage_per_mini_batch,
        },
        "actor": {**network, "hidden_dims": list(hp.actor_hidden_dims),
                  "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": hp.init_noise_std}},
        "critic": {**network, "hidden_dims": list(hp.critic_hidden_dims)},
    }


def copy_linear_layers(source: Any, target: Any) -> None:
    """The weights of ``source``'s linear layers into ``target``'s, in order (both MLPs of the same sizes)."""
    import torch

    pairs = list(zip([m for m in source.modules() if isinstance(m, torch.nn.Linear)],
                     [m for m in target.modules() if isinstance(m, torch.nn.Linear)], strict=True))
    with torch.no_grad():
        for a, b in pairs:
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)


def rsl_rl_env(env: Any, obs: dict, tracker: Any, collection_threads: int) -> Any:
    """leggedex's ``env`` as an rsl_rl ``VecEnv`` (its current observations ``obs``); each step feeds ``tracker`` and
    runs with ``collection_threads`` torch threads, as leggedex's DataModule collects."""
    import torch
    from rsl_rl.env import VecEnv as RslVecEnv
    from tensordict import TensorDict

    class Adapter(RslVecEnv):
        def __init__(self) -> None:
            self.num_envs, self.num_actions = env.num_envs, env.num_actions
            self.max_episode_length, self.device, self.cfg = env.max_episode_length, str(env.device), {}
            self.obs, self.collection_threads = obs, collection_threads

        @property
        def episode_length_buf(self) -> torch.Tensor:
            return env.episode_length_buf

        @episode_length_buf.setter
        def episode_length_buf(self, value: torch.Tensor) -> None:
            env.episode_length_buf = value

        def get_observations(self) -> TensorDict:
            return TensorDict(dict(self.obs), batch_size=[env.num_envs])

        def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
            torch.set_num_threads(self.collection_threads)
            self.obs, rewards, dones, extras = env.step(actions)
            tracker.update(rewards, dones, extras)
            return self.get_observations(), rewards, dones, extras

    return Adapter()


def build_peer(config: str, seed: int, overrides: list[str]) -> tuple[Any, Any, Any]:
    """leggedex's env and PPO as ``leggedex fit`` builds them for ``seed`` (``PlainLoop``: the rollout and update
    code of training, without a Trainer), and rsl_rl's runner on that env with the same settings and initial
    weights; the global RNG left as leggedex's is before its first action."""
    import torch
    from rsl_rl.runners import OnPolicyRunner

    from leggedex.cli.fit import LeggedexCLI
    from leggedex.data import PlainLoop

    cli = LeggedexCLI(args=fit_args(config, seed, 1, overrides, tempfile.mkdtemp())[1:], run=False,
                      save_config_callback=None)
    method, data = cli.model, cli.datamodule
    if type(method).__name__ != "PPO":
        raise ValueError(f"rsl_rl's OnPolicyRunner runs PPO; the config's method is {type(method).__name__}")
    update_threads = torch.get_num_threads()  # what --torch_threads set
    env = data.env_factory(data.num_envs, data.env_seed(), "cpu")
    loop = PlainLoop(env, method)  # builds the networks: leggedex's initial weights for this seed
    rng = torch.get_rng_state()
    adapter = rsl_rl_env(env, loop.obs, loop.tracker, data.collection_threads or update_threads)
    runner = OnPolicyRunner(adapter, rsl_rl_config(method.hparams), log_dir=None, device=str(env.device))
    ac = method.built_actor_critic
    copy_linear_layers(ac.actor, runner.alg.actor.mlp)
    copy_linear_layers(ac.critic, runner.alg.critic.mlp)
    with torch.no_grad():
        runner.alg.actor.distribution.std_param.copy_(ac.std)
    torch.set_rng_state(rng)  # rsl_rl's own (overwritten) initialization drew from it
    return loop, runner, update_threads


def run_rsl_rl(config: str, seed: int, iterations: int, overrides: list[str]) -> list[dict[str, float]]:
    import torch

    loop, runner, update_threads = build_peer(config, seed, overrides)
    curve: list[dict[str, float]] = []
    update = runner.alg.update
    clock = {"start": time.perf_counter()}

    def timed_update() -> dict[str, float]:
        begin = time.perf_counter()
        torch.set_num_threads(update_threads)
        losses = update()
        end = time.perf_counter()
        returns, _, info = loop.tracker.pop()
        curve.append({"return": float(returns.mean()) if returns.numel() else math.nan,
                      **{key: float(value) for key, value in info.items() if "tracking" in key},
                      "collection_s": begin - clock["start"], "update_s": end - begin})
        clock["start"] = time.perf_counter()
        return losses

    runner.alg.update = timed_update
    runner.learn(iterations)
    return curve


def update_parity(config: str, seed: int, overrides: list[str]) -> dict[str, float]:
    """One update of each library on the same rollout (leggedex's, copied into rsl_rl's storage) from the same
    weights and mini-batch permutation: the largest parameter difference after it, beside the update's size."""
    import torch
    from tensordict import TensorDict

    loop, runner, _ = build_peer(config, seed, overrides)
    method, alg = loop.method, runner.alg
    if method.hparams.empirical_normalization:
        raise ValueError("--parity copies stored observations, which leggedex stores normalized: it needs "
                         "model.init_args.empirical_normalization=false")
    with torch.inference_mode():
        rollout = loop.collect()
    mine, theirs = method.storage, alg.storage
    with torch.no_grad():
        theirs.observations.copy_(TensorDict(dict(mine.obs), batch_size=[mine.num_steps, mine.num_envs]))
        for name, field in (("actions", "actions"), ("rewards", "rewards"), ("values", "values"),
                            ("actions_log_prob", "log_probs"), ("dones", "dones")):
            target = getattr(theirs, name)
            target.copy_(getattr(mine, field).reshape(target.shape))
        theirs.distribution_params = (mine.action_mean.clone(), mine.action_std.clone())
        theirs.step = mine.num_steps
    ac = method.built_actor_critic

    def flat(actor: Any, std: torch.Tensor, critic: Any) -> torch.Tensor:
        layers = [m for net in (actor, critic) for m in net.modules() if isinstance(m, torch.nn.Linear)]
        return torch.cat([*(t.detach().flatten() for m in layers for t in (m.weight, m.bias)), std.detach()])

    before = flat(ac.actor, ac.std, ac.critic).clone()
    rng = torch.get_rng_state()
    loop.learn(rollout)
    torch.set_rng_state(rng)  # the same mini-batch permutation for rsl_rl
    with torch.inference_mode():
        alg.compute_returns(TensorDict(dict(rollout.last_obs), batch_size=[mine.num_envs]))
    alg.update()
    after = flat(ac.actor, ac.std, ac.critic)
    peer = flat(alg.actor.mlp, alg.actor.distribution.std_param, alg.critic.mlp)
    return {"max_abs_difference": float((after - peer).abs().max()),
            "max_abs_update": float((after - before).abs().max()),
            "learning_rate": float(loop.optimizer.param_groups[0]["lr"]), "rsl_rl_learning_rate": alg.learning_rate}


def interleaved_throughput(config: str, seed: int, overrides: list[str], rounds: int,
                           block: int) -> dict[str, dict[str, float]]:
    """Iterations of leggedex (the Trainer's rollout and update code, ``PlainLoop``) and of rsl_rl's runner
    alternating on one env in one process, ``block`` iterations each per round, the order swapped every round, so
    that the machine's noise hits both alike; the first block of each is warm-up. Per library: median collection,
    update and iteration seconds and env-steps per second."""
    import contextlib
    import io
    import statistics

    import torch

    loop, runner, update_threads = build_peer(config, seed, overrides)
    adapter = runner.env
    update, last = runner.alg.update, {}

    def timed_update() -> dict[str, float]:
        begin = time.perf_counter()
        torch.set_num_threads(update_threads)
        losses = update()
        last["update_s"] = time.perf_counter() - begin
        return losses

    runner.alg.update = timed_update

    def rsl_rl_iteration() -> tuple[float, float]:
        adapter.obs = loop.obs  # the env moved on under leggedex's iterations
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # its per-iteration report
            runner.learn(1)
        total = time.perf_counter() - start
        loop.obs = dict(adapter.obs)
        return total - last["update_s"], last["update_s"]

    def leggedex_iteration() -> tuple[float, float]:
        collected, total = loop.timed_iteration(adapter.collection_threads, update_threads)
        return collected, total - collected

    iteration = {"leggedex": leggedex_iteration, "rsl_rl": rsl_rl_iteration}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in iteration}
    for r in range(rounds + 1):
        for name in (("leggedex", "rsl_rl") if r % 2 == 0 else ("rsl_rl", "leggedex")):
            block_times = [iteration[name]() for _ in range(block)]
            if r > 0:
                times[name] += block_times
    steps = loop.env.num_envs * loop.method.hparams.num_steps_per_env
    result = {}
    for name, pairs in times.items():
        collection = statistics.median(c for c, _ in pairs)
        update_s = statistics.median(u for _, u in pairs)
        total = statistics.median(c + u for c, u in pairs)
        result[name] = {"collection_s": collection, "update_s": update_s, "iteration_s": total,
                        "env_steps_per_s": steps / total, "iterations": len(pairs)}
    return result


# ----------------------------------------------------------------------------------------------- the parent
def override(item: str) -> list[str]:
    """``key=value`` as the command-line arguments ``--key value``."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SystemExit(f"--set takes KEY=VALUE items, got {item!r}")
    return [f"--{key}", value]


def child(args: argparse.Namespace, overrides: list[str]) -> None:
    if args.variant == "rsl_rl":
        curve = run_rsl_rl(args.config, args.seed, args.iterations, overrides)
    else:
        curve = run_leggedex(args.config, args.seed, args.iterations, VARIANTS[args.variant] + overrides)
    Path(args.child_out).write_text(json.dumps(curve))


def mean_and_half_width(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, T95.get(n - 1, 1.96) * std / math.sqrt(n)


def summarize(runs: dict[str, dict[int, list[dict[str, float]]]], steps_per_iteration: int) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for variant, by_seed in runs.items():
        finals, areas, rates, tracking = [], [], [], []
        for curve in by_seed.values():
            returns = [row["return"] for row in curve if not math.isnan(row["return"])]
            finals.append(sum(returns[-10:]) / len(returns[-10:]))
            areas.append(sum(returns) / len(returns))
            seconds = sum(row["collection_s"] + row["update_s"] for row in curve[1:])  # the first warms up
            rates.append(steps_per_iteration * (len(curve) - 1) / seconds)
            keys = [key for key in curve[-1] if "tracking_lin_vel" in key]
            if keys:
                tracking.append(sum(row[keys[0]] for row in curve[-10:]) / 10)
        summary[variant] = {
            "final_return": mean_and_half_width(finals), "mean_return": mean_and_half_width(areas),
            "env_steps_per_s": mean_and_half_width(rates),
            "tracking_lin_vel": mean_and_half_width(tracking) if tracking else None,
            "seeds": sorted(by_seed), "per_seed_final": finals,
        }
    return summary


def print_table(summary: dict[str, Any], reference: str | None) -> None:
    def cell(pair: tuple[float, float], digits: int = 2) -> str:
        return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"

    print("| variant | seeds | final return | mean return (AUC) | tracking_lin_vel (last 10) | env-steps/s | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    base = summary[reference]["env_steps_per_s"][0] if reference in summary else None
    for variant, row in summary.items():
        ratio = f"{row['env_steps_per_s'][0] / base:.2f}" if base else "-"
        tracking = cell(row["tracking_lin_vel"], 3) if row["tracking_lin_vel"] else "-"
        print(f"| {variant} | {len(row['seeds'])} | {cell(row['final_return'])} | {cell(row['mean_return'])} | "
              f"{tracking} | {row['env_steps_per_s'][0]:.0f} | {ratio} |")


def plot(runs: dict[str, dict[int, list[dict[str, float]]]], steps_per_iteration: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4))
    for variant, by_seed in runs.items():
        curves = np.array([[row["return"] for row in curve] for curve in by_seed.values()], dtype=float)
        mean = np.nanmean(curves, axis=0)
        n = curves.shape[0]
        half = T95.get(n - 1, 1.96) * np.nanstd(curves, axis=0, ddof=1) / np.sqrt(n) if n > 1 else 0 * mean
        steps = (np.arange(curves.shape[1]) + 1) * steps_per_iteration / 1e6
        ax.plot(steps, mean, label=f"{variant} ({n} seeds)")
        ax.fill_between(steps, mean - half, mean + half, alpha=0.2)
    ax.set_xlabel("env-steps (millions)")
    ax.set_ylabel("mean episode return")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/go2_flat.yaml")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for every variant, e.g. data.num_envs=256")
    parser.add_argument("--out", default=None, help="path prefix for the .json and .png (default: print only)")
    parser.add_argument("--parity", action="store_true",
                        help="instead: one update of each leggedex variant and of rsl_rl on the same rollout and "
                             "weights (first seed), and the largest parameter difference after it")
    parser.add_argument("--interleaved", type=int, default=None, metavar="ROUNDS",
                        help="instead: throughput of each leggedex variant and of rsl_rl, iterations alternating in "
                             "one process on one env (first seed), ROUNDS rounds of --block iterations each")
    parser.add_argument("--block", type=int, default=5, help="iterations per library per round of --interleaved")
    parser.add_argument("--child", dest="variant", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    overrides = [part for item in args.set for part in override(item)]
    if args.variant is not None:
        child(args, overrides)
        return
    if args.parity:
        print("| variant | max abs parameter difference to rsl_rl after one update | max abs update | "
              "learning rate (leggedex / rsl_rl) |")
        print("| --- | ---: | ---: | ---: |")
        for variant in (v for v in args.variants if v != "rsl_rl"):
            result = update_parity(args.config, args.seeds[0], VARIANTS[variant] + overrides)
            print(f"| {variant} | {result['max_abs_difference']:.2e} | {result['max_abs_update']:.2e} | "
                  f"{result['learning_rate']:.2e} / {result['rsl_rl_learning_rate']:.2e} |", flush=True)
        return

    if args.interleaved is not None:
        print("| variant | collection s | update s | iteration s | env-steps/s | rsl_rl's in the same run | ratio |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for variant in (v for v in args.variants if v != "rsl_rl"):
            result = interleaved_throughput(args.config, args.seeds[0], VARIANTS[variant] + overrides,
                                            args.interleaved, args.block)
            mine, peer = result["leggedex"], result["rsl_rl"]
            print(f"| {variant} | {mine['collection_s']:.3f} | {mine['update_s']:.3f} | {mine['iteration_s']:.3f} | "
                  f"{mine['env_steps_per_s']:.0f} | {peer['collection_s']:.3f} + {peer['update_s']:.3f} = "
                  f"{peer['iteration_s']:.3f} s, {peer['env_steps_per_s']:.0f} | "
                  f"{mine['env_steps_per_s'] / peer['env_steps_per_s']:.3f} |", flush=True)
            if args.out:
                path = Path(f"{args.out}_{variant}.json")
                path.write_text(json.dumps({"args": vars(args), "result": result}))
        return

    runs: dict[str, dict[int, list[dict[str, float]]]] = {v: {} for v in args.variants}
    for k, seed in enumerate(args.seeds):
        order = args.variants[k % len(args.variants):] + args.variants[:k % len(args.variants)]
        for variant in order:
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
                path = out.name
            command = [sys.executable, __file__, "--config", args.config, "--iterations", str(args.iterations),
                       "--child", variant, "--seed", str(seed), "--child-out", path, "--set", *args.set]
            started = time.perf_counter()
            subprocess.run(command, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
                           stdout=subprocess.DEVNULL)
            runs[variant][seed] = json.loads(Path(path).read_text())
            os.unlink(path)
            final = runs[variant][seed][-1]["return"]
            print(f"seed {seed} {variant}: {time.perf_counter() - started:.0f} s, last return {final:.2f}",
                  flush=True)
            if args.out:  # what has run so far survives an interruption
                Path(f"{args.out}.json").write_text(json.dumps({"args": vars(args), "runs": runs}))

    from leggedex.cli.fit import LeggedexCLI

    cli = LeggedexCLI(args=fit_args(args.config, 0, 1, overrides, tempfile.mkdtemp())[1:], run=False,
                      save_config_callback=None)
    steps_per_iteration = cli.datamodule.num_envs * cli.model.hparams.num_steps_per_env
    summary = summarize(runs, steps_per_iteration)
    print_table(summary, "rsl_rl")
    if args.out:
        Path(f"{args.out}.json").write_text(json.dumps({"args": vars(args), "summary": summary, "runs": runs}))
        plot(runs, steps_per_iteration, Path(f"{args.out}.png"))


if __name__ == "__main__":
    main()
