"""Physics throughput of the MuJoCo batch backend, in policy steps per second.

One policy step = ``substeps`` (4) physics steps of 5 ms for one world. Measured:

* raw:     ``mujoco.batch.Batch`` alone; position servos, ctrl = targets, one
           ``step(nstep=4)`` call per policy step.
* raw-pd:  the same worlds with torque motors and the PD evaluated in numpy
           before each of 4 single ``step(nstep=1)`` calls.
* backend: ``MujocoBatchBackend`` (position servos): set_dof_targets + step +
           every state getter read (what a task does each policy step).
* backend-pd: the same with ``actuation="motor"``.

The position/motor pairs run interleaved in short rounds, so machine load hits
both alike. Timing starts after ``--warmup`` policy steps (robots landed and in
contact); every world is reset to the home pose every ``--reset-every`` policy
steps so fallen robots do not dominate.

    python scripts/bench_physics.py --num-envs 256 1024 4096 --seconds 3
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import mujoco
import mujoco.batch
import numpy as np
import torch

from leggedex.benchmark import SUBSTEPS, interleaved, joint_targets, raw_batch_runner
from leggedex.envs.backends import MujocoBatchBackend


def backend_runner(n: int, motor: bool, threads: int, targets: str, reset_every: int) -> Callable[[], None]:
    """One policy step through MujocoBatchBackend, reading every getter."""
    b = MujocoBatchBackend(n, num_threads=threads, actuation="motor" if motor else "position")
    home = b.default_dof_pos.numpy().astype(np.float64)
    rng = np.random.default_rng(0)
    all_ids = torch.arange(n)
    start = {
        "root_pos": torch.tensor([[0.0, 0.0, b.home_base_height]]).repeat(n, 1),
        "root_quat": torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        "root_lin_vel": torch.zeros(n, 3),
        "root_ang_vel": torch.zeros(n, 3),
        "dof_pos": b.default_dof_pos.repeat(n, 1),
        "dof_vel": torch.zeros(n, b.num_dofs),
    }
    state = {"step": 0, "tgt": torch.from_numpy(joint_targets(targets, home, n, rng).astype(np.float32))}
    sink = []

    def policy_step() -> None:
        if state["step"] % 10 == 0:
            state["tgt"] = torch.from_numpy(joint_targets(targets, home, n, rng).astype(np.float32))
        b.set_dof_targets(state["tgt"])
        b.step()
        sink[:] = [
            b.root_pos, b.root_quat, b.root_lin_vel_world, b.root_ang_vel_world, b.root_lin_vel_body,
            b.root_ang_vel_body, b.projected_gravity, b.dof_pos, b.dof_vel, b.applied_torques,
            b.foot_contact_forces, b.foot_contact, b.foot_pos_world, b.body_contact, b.sim_failures(),
        ]
        state["step"] += 1
        if state["step"] % reset_every == 0:
            b.reset(all_ids, **start)

    return policy_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per variant and size")
    parser.add_argument("--threads", type=int, default=0, help="Batch threads (0: all cores)")
    parser.add_argument("--targets", choices=("home", "random"), default="home",
                        help="home pose targets, or home + U(-0.5, 0.5) rad resampled every 10 steps")
    parser.add_argument("--reset-every", type=int, default=250, help="policy steps between full resets")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured policy steps before timing")
    args = parser.parse_args()

    print(f"mujoco {mujoco.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"threads={args.threads or 'all'}, targets={args.targets}, dt 0.005 x {SUBSTEPS} substeps")
    print(f"{'envs':>6} | {'raw pos':>10} {'raw motor+PD':>13} {'pos gain':>9} | "
          f"{'backend pos':>12} {'backend motor':>14} {'pos gain':>9}")
    for n in args.num_envs:
        raw_pos, raw_mot = interleaved(
            raw_batch_runner(n, False, args.threads, args.targets, args.reset_every),
            raw_batch_runner(n, True, args.threads, args.targets, args.reset_every),
            n, args.seconds, args.warmup,
        )
        be_pos, be_mot = interleaved(
            backend_runner(n, False, args.threads, args.targets, args.reset_every),
            backend_runner(n, True, args.threads, args.targets, args.reset_every),
            n, args.seconds, args.warmup,
        )
        print(f"{n:>6} | {raw_pos:>10.0f} {raw_mot:>13.0f} {100 * (raw_pos / raw_mot - 1):>8.1f}% | "
              f"{be_pos:>12.0f} {be_mot:>14.0f} {100 * (be_pos / be_mot - 1):>8.1f}%", flush=True)
    print("(policy steps per second = worlds x policy steps / wall second)")


if __name__ == "__main__":
    main()
