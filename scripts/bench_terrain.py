"""What rough terrain and the teacher-student observation groups cost the Go2 task, measured side by side.

Three envs with the same number of worlds, stepped interleaved (scripts/bench_physics.py's ``interleaved``) with
random actions N(0, 0.5):
- flat: go2_flat's task (policy 45 + critic 48);
- rough: the same on go2_ts's curriculum heightfield (10 x 10 tiles of 8 m);
- rough + TS groups: go2_ts's groups as well (history 900, privileged 94, critic 5 x 172 with a 9 x 9 height scan).

    python scripts/bench_terrain.py --num-envs 1024 --seconds 6
"""

from __future__ import annotations

import argparse
import json

import torch

from leggedex.benchmark import interleaved, task_runner
from leggedex.envs import LeggedLocomotion, TerrainConfig
from leggedex.envs.locomotion.config import ObservationConfig

GO2_TS_TERRAIN = TerrainConfig(num_rows=10, num_cols=10, tile_size=8.0, border=5.0, max_init_level=2)
GO2_TS_OBS = ObservationConfig(history_length=20, privileged=True, critic_privileged=True, height_scan=True,
                               critic_frames=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = args.num_envs
    with torch.inference_mode():
        flat = LeggedLocomotion(n, seed=0)
        rough = LeggedLocomotion(n, seed=0, terrain=GO2_TS_TERRAIN)
        rough_ts = LeggedLocomotion(n, seed=0, terrain=GO2_TS_TERRAIN, observations=GO2_TS_OBS)
        for env in (flat, rough, rough_ts):
            env.reset()
        flat_rate, rough_rate = interleaved(task_runner(flat, 0.5), task_runner(rough, 0.5), n, args.seconds, 50)
        rough_rate_2, ts_rate = interleaved(task_runner(rough, 0.5), task_runner(rough_ts, 0.5), n, args.seconds, 0)
    print(json.dumps({
        "num_envs": n,
        "flat_steps_per_s": round(flat_rate),
        "rough_steps_per_s": round(rough_rate),
        "rough_over_flat": round(rough_rate / flat_rate, 3),
        "rough_ts_steps_per_s": round(ts_rate),
        "ts_groups_over_plain_groups": round(ts_rate / rough_rate_2, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
