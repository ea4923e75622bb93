"""Observation terms: the raw (unscaled) quantities the observation groups are assembled from, each with its unit.

Each term is ``fn(env, **params) -> (num_envs, size)``, named by the layouts in ``obs_layouts.py`` (which also
give the parameters, from ``ObservationConfig``, and the scales and noise). The unit registered with a term is
what the deploy contract tells a robot-side loop, so it is written once, here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from leggedex.envs.term_table import TermTable

if TYPE_CHECKING:
    from leggedex.envs.locomotion.env import LeggedLocomotion

OBSERVATIONS = TermTable("observation", "observations")
term = OBSERVATIONS.term


def unit(name: str) -> str:
    """What the raw value of observation term ``name`` is (frame and unit)."""
    return str(OBSERVATIONS[name].info["unit"])


@term(unit="commanded lin_vel_x, lin_vel_y (m/s) and yaw rate (rad/s), base frame")
def command(env: LeggedLocomotion) -> torch.Tensor:
    return env.commands.command


@term(unit="unit gravity vector in the base frame")
def projected_gravity(env: LeggedLocomotion) -> torch.Tensor:
    return env.projected_gravity


@term(unit="base angular velocity, rad/s, base frame")
def base_ang_vel(env: LeggedLocomotion) -> torch.Tensor:
    return env.base_ang_vel


@term(unit="joint position - default_joint_pos, rad, joint_names order")
def dof_pos(env: LeggedLocomotion) -> torch.Tensor:
    return env.dof_pos - env.default_dof_pos


@term(unit="joint velocity, rad/s, joint_names order")
def dof_vel(env: LeggedLocomotion) -> torch.Tensor:
    return env.dof_vel


@term(unit="the previous action after clipping (zeros after a reset)")
def last_action(env: LeggedLocomotion) -> torch.Tensor:
    return env.actions


@term(unit="base linear velocity, m/s, base frame")
def base_lin_vel(env: LeggedLocomotion) -> torch.Tensor:
    return env.base_lin_vel


@term(unit="friction coefficient of the world (randomized by events.terms.physics)")
def friction(env: LeggedLocomotion) -> torch.Tensor:
    return env.sim.friction.reshape(env.num_envs, 1).to(env.device)


@term(unit="mass added to the base, kg")
def added_base_mass(env: LeggedLocomotion) -> torch.Tensor:
    return env.sim.added_base_mass.reshape(env.num_envs, 1).to(env.device)


@term(unit="offset of the base's centre of mass, m, base frame")
def com_offset(env: LeggedLocomotion) -> torch.Tensor:
    return env.sim.com_offset.to(env.device)


@term(unit="horizontal velocity set by the last push, m/s, world frame (zeros after a reset)")
def push_vel(env: LeggedLocomotion) -> torch.Tensor:
    return env.push_vel


@term(unit="kp / nominal kp - 1, joint_names order")
def kp_scale(env: LeggedLocomotion) -> torch.Tensor:
    return env.sim.kp_scale.to(env.device) - 1.0


@term(unit="kd / nominal kd - 1, joint_names order")
def kd_scale(env: LeggedLocomotion) -> torch.Tensor:
    return env.sim.kd_scale.to(env.device) - 1.0


@term(unit="passive joint damping, Nm s/rad, joint_names order")
def joint_damping(env: LeggedLocomotion) -> torch.Tensor:
    return env.sim.joint_damping.to(env.device)


@term(unit="joint Coulomb friction (frictionloss), Nm, joint_names order")
def joint_friction(env: LeggedLocomotion) -> torch.Tensor:
    return env.sim.joint_friction.to(env.device)


@term(unit="rotor inertia / the model's - 1, joint_names order")
def armature_scale(env: LeggedLocomotion) -> torch.Tensor:
    return env.sim.armature_scale.to(env.device) - 1.0


@term(unit="PD torque scale - 1, joint_names order")
def motor_strength(env: LeggedLocomotion) -> torch.Tensor:
    return env.sim.motor_strength.to(env.device) - 1.0


@term(unit="actuation latency, s")
def action_latency(env: LeggedLocomotion) -> torch.Tensor:
    return (env.sim.action_delay * env.sim.sim_dt).reshape(env.num_envs, 1).to(env.device)


@term(unit="foot contact impedance at zero penetration (MuJoCo solimp[0])")
def foot_solimp_dmin(env: LeggedLocomotion) -> torch.Tensor:
    return env.sim.foot_solimp_dmin.reshape(env.num_envs, 1).to(env.device)


@term(unit="penetration over which the foot contact stiffens (solimp[2]), cm")
def foot_solimp_width(env: LeggedLocomotion) -> torch.Tensor:
    return 100 * env.sim.foot_solimp_width.reshape(env.num_envs, 1).to(env.device)


@term(unit="log10 of the contacts' friction-to-normal impedance ratio")
def impratio(env: LeggedLocomotion) -> torch.Tensor:
    return torch.log10(env.sim.impratio).reshape(env.num_envs, 1).to(env.device)


@term(unit="1 for an elliptic friction cone, 0 for a pyramidal one")
def elliptic_cone(env: LeggedLocomotion) -> torch.Tensor:
    return env.sim.elliptic_cone.reshape(env.num_envs, 1).to(env.device)


@term(unit="torsional friction of the foot contacts, mm (torque per unit normal force)")
def foot_torsional_friction(env: LeggedLocomotion) -> torch.Tensor:
    return 1000 * env.sim.foot_torsional_friction.reshape(env.num_envs, 1).to(env.device)


@term(unit="IMU bias added to the policy's readings: projected gravity (3), angular velocity rad/s (3)")
def imu_bias(env: LeggedLocomotion) -> torch.Tensor:
    return env.imu_bias


@term(unit="sensing delay of the policy's readings, s")
def observation_latency(env: LeggedLocomotion) -> torch.Tensor:
    return env.observation_latency.reshape(env.num_envs, 1)


def prepare_leg_contact(part: str) -> Any:
    def prepare(env: LeggedLocomotion) -> dict[str, Any]:
        ids = env.leg_body_ids.get(part)
        if ids is None:
            raise ValueError(f"{part} contact observations need the robot description's leg_bodies {part!r} (one "
                             f"contact body per foot of {env.sim.foot_names}); robot {env.robot.name!r} has "
                             f"{sorted(env.robot.leg_bodies)}")
        return {"body_ids": ids}
    return prepare


@term(unit="1 when the thigh touches the ground, else 0, foot order", prepare=prepare_leg_contact("thigh"))
def thigh_contact(env: LeggedLocomotion, *, body_ids: torch.Tensor) -> torch.Tensor:
    return env.body_contact[:, body_ids].float()


@term(unit="1 when the calf touches the ground, else 0, foot order", prepare=prepare_leg_contact("calf"))
def calf_contact(env: LeggedLocomotion, *, body_ids: torch.Tensor) -> torch.Tensor:
    return env.body_contact[:, body_ids].float()


@term(unit="1 when the foot touches the ground, else 0, foot order")
def foot_contact(env: LeggedLocomotion) -> torch.Tensor:
    return env.foot_contact.float()


def grid(counts: tuple[int, int], spacing: float, device: torch.device) -> torch.Tensor:
    """(nx * ny, 2) points of a centred grid, x major."""
    nx, ny = counts
    xs = (torch.arange(nx, device=device) - (nx - 1) / 2) * spacing
    ys = (torch.arange(ny, device=device) - (ny - 1) / 2) * spacing
    return torch.stack(torch.meshgrid(xs, ys, indexing="ij"), dim=-1).reshape(-1, 2)


def prepare_foot_heights(env: LeggedLocomotion, *, spacing: float) -> dict[str, Any]:
    offsets = torch.tensor([-1.0, 0.0, 1.0], device=env.device) * spacing
    return {"offsets": torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), dim=-1).reshape(-1, 2)}


@term(unit="sole height above the ground at 3 x 3 points around each foot (spacing apart), m, clipped to +-1",
      prepare=prepare_foot_heights)
def foot_heights(env: LeggedLocomotion, *, offsets: torch.Tensor) -> torch.Tensor:
    points = env.foot_pos[:, :, None, :2] + offsets
    sole = env.foot_pos[:, :, 2:3] - env.foot_radius
    return (sole - env.ground.height(points)).clamp(-1.0, 1.0).flatten(1)


@term(unit="unit ground normal under each foot, world frame")
def foot_normals(env: LeggedLocomotion) -> torch.Tensor:
    return env.ground.normals(env.foot_pos[:, :, :2]).flatten(1)


def prepare_height_scan(env: LeggedLocomotion, *, points: tuple[int, int], spacing: float,
                        offset: float) -> dict[str, Any]:
    return {"grid_points": grid(points, spacing, env.device), "offset": offset}


@term(unit="clip(base z - offset - ground z, -1, 1), m, on a grid around the base (x forward, yaw-aligned)",
      prepare=prepare_height_scan)
def height_scan(env: LeggedLocomotion, *, grid_points: torch.Tensor, offset: float) -> torch.Tensor:
    cos, sin = torch.cos(env.base_heading)[:, None], torch.sin(env.base_heading)[:, None]
    px, py = grid_points[:, 0], grid_points[:, 1]
    points = torch.stack([cos * px - sin * py, sin * px + cos * py], dim=-1) + env.base_pos[:, None, :2]
    return (env.base_pos[:, 2:3] - offset - env.ground.height(points)).clamp(-1.0, 1.0)
