"""Unitree Go2 with the project's own model file (``leggedex/assets/go2/go2.xml``)."""

from __future__ import annotations

from pathlib import Path

from leggedex.robots.description import RobotDescription

LEGS = ("FL", "FR", "RL", "RR")
_HIP_THIGH_TORQUE, _CALF_TORQUE = 23.7, 45.43  # published motor limits (Nm)
_HIP_THIGH_SPEED, _CALF_SPEED = 30.1, 15.7  # published joint speed limits (rad/s), the motors' no-load speeds

GO2 = RobotDescription(
    name="go2",
    model_file=str(Path(__file__).resolve().parents[1] / "assets" / "go2" / "go2.xml"),
    base_body="base",
    joints=tuple(f"{leg}_{part}_joint" for leg in LEGS for part in ("hip", "thigh", "calf")),
    feet=tuple(f"{leg}_foot" for leg in LEGS),
    foot_radius=0.022,
    contact_bodies=("base",) + tuple(f"{leg}_{part}" for part in ("hip", "thigh", "calf") for leg in LEGS),
    leg_bodies={part: tuple(f"{leg}_{part}" for leg in LEGS) for part in ("thigh", "calf")},
    hip_joints=tuple(f"{leg}_hip_joint" for leg in LEGS),
    default_joint_pos=(0.0, 0.8, -1.5) * 4,
    home_base_height=0.335,  # the foot spheres then rest 0.4 mm above the ground
    kp=20.0,
    kd=0.5,
    torque_limits=(_HIP_THIGH_TORQUE, _HIP_THIGH_TORQUE, _CALF_TORQUE) * 4,
    velocity_limits=(_HIP_THIGH_SPEED, _HIP_THIGH_SPEED, _CALF_SPEED) * 4,
)
