"""The student's history encoder against the teacher's privileged latent, checkpoint by checkpoint, on fixed data.

For every checkpoint of a TeacherStudentPPO run: roll the teacher (deterministic) out in one evaluation env set
(same seed, noise as in training, so the history looks like what the encoder was trained on) and report
``MSE(history_encoder(history), privilege_encoder(privileged))`` and the same divided by the variance of the
teacher's latent: the logged ``Loss/encoder`` can stay flat while the teacher's latent grows, the relative error
cannot hide that.

    python scripts/encoder_error.py --config configs/go2_ts.yaml logs/go2_ts/<run>/checkpoints/model_*.ckpt
"""

from __future__ import annotations

import argparse
import json
import re

import torch

from leggedex.cli.checkpoint import build_env, load_method


@torch.inference_mode()
def encoder_error(config: str, ckpt: str, num_envs: int, steps: int, seed: int) -> dict[str, float]:
    cli, method = load_method(["--config", config], ckpt)
    env = build_env(cli, num_envs, seed, evaluation=False)
    ac = method.actor_critic
    obs = env.reset()
    errors, spreads = [], []
    for _ in range(steps):
        stored = method.normalize_obs(obs, observe=False)
        target = ac.teacher_latent(stored["privileged"])
        errors.append((ac.student_latent(stored["history"]) - target).square().mean())
        spreads.append(target.var(dim=0).mean())
        obs, _, _, _ = env.step(method.action_distribution(stored).mean)
    env.close()
    mse, spread = float(torch.stack(errors).mean()), float(torch.stack(spreads).mean())
    return {"mse": mse, "latent_variance": spread, "relative": mse / spread}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--config", required=True)
    parser.add_argument("--num-envs", type=int, default=128)
    parser.add_argument("--steps", type=int, default=150, help="policy steps (the first 20 fill the history)")
    parser.add_argument("--seed", type=int, default=4321)
    args = parser.parse_args()
    torch.set_num_threads(1)

    def iteration(path: str) -> int:
        found = re.search(r"model_(\d+)", path)
        return int(found.group(1)) if found else 1 << 30

    rows = {}
    for ckpt in sorted(args.checkpoints, key=iteration):
        rows[ckpt] = encoder_error(args.config, ckpt, args.num_envs, args.steps, args.seed)
        print(ckpt, json.dumps({k: round(v, 4) for k, v in rows[ckpt].items()}), flush=True)


if __name__ == "__main__":
    main()
