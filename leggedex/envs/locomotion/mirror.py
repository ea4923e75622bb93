"""The locomotion task's left-right mirror, computed from its observation layouts' term names.

Reflecting the robot across its sagittal plane (the base's x-z plane): vectors in the base frame keep x and z and
negate y (linear velocity, gravity, CoM offset), axial vectors negate x and z (angular velocity); the command is
(vx, -vy, -yaw); per-joint terms swap the left and right legs, and joint angles, speeds and actions also negate
the abduction (hip) joints; per-foot terms swap the left and right feet; the yaw-aligned height scan flips across
its y axis; scalars stay. Legs pair by name: ``FL`` <-> ``FR``, ``RL`` <-> ``RR`` (the leg prefix's last letter).

Terms measured in the world frame on world-axis grids (``push_vel``, ``foot_heights``, ``foot_normals``) have no
such mirror (it would depend on the heading): a layout holding one has no mirror, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from leggedex.envs.locomotion.obs_layouts import LocomotionObsLayouts, ObsLayout, ObsTerm
from leggedex.envs.mirror import Mirror, SignedPermutation

SIGNS = {"command": (1.0, -1.0, -1.0), "projected_gravity": (1.0, -1.0, 1.0), "base_ang_vel": (-1.0, 1.0, -1.0),
         "base_lin_vel": (1.0, -1.0, 1.0), "com_offset": (1.0, -1.0, 1.0),
         "imu_bias": (1.0, -1.0, 1.0, -1.0, 1.0, -1.0)}  # gravity bias, then angular velocity bias
JOINT_MOTION = ("dof_pos", "dof_vel", "last_action")
JOINT_PARAMETERS = ("kp_scale", "kd_scale", "joint_damping", "joint_friction", "armature_scale", "motor_strength")
FOOT_TERMS = ("thigh_contact", "calf_contact", "foot_contact")
SCALARS = ("friction", "added_base_mass", "action_latency", "observation_latency", "foot_solimp_dmin",
           "foot_solimp_width", "impratio", "elliptic_cone", "foot_torsional_friction")


class MirrorUnavailable(ValueError):
    """The task cannot mirror one of its groups: names the term or the asymmetry."""


def other_side(name: str) -> str:
    """``FL_hip`` -> ``FR_hip``: the leg prefix (before the first ``_``) with its last letter L / R swapped."""
    leg, sep, rest = name.partition("_")
    if not leg or leg[-1] not in "LR":
        raise MirrorUnavailable(f"{name!r} names no left or right leg (a leg prefix ending in L or R, as FL_hip)")
    return leg[:-1] + ("R" if leg[-1] == "L" else "L") + sep + rest


def swap_sides(names: Sequence[str], what: str) -> tuple[int, ...]:
    """For each name, the index of its mirror-side counterpart among ``names``."""
    position = {name: i for i, name in enumerate(names)}
    out = []
    for name in names:
        partner = other_side(name)
        if partner not in position:
            raise MirrorUnavailable(f"{what} {name!r} has no mirror-side {partner!r} among {list(names)}")
        out.append(position[partner])
    return tuple(out)


class LocomotionMirror:
    """Mirrors of the task's terms for one robot: ``dof_names`` and ``foot_names`` in task order, the names of the
    abduction joints (negated) and the home pose (which must be its own mirror for ``dof_pos``)."""

    def __init__(self, dof_names: Sequence[str], foot_names: Sequence[str], hip_names: Sequence[str],
                 default_dof_pos: Sequence[float]) -> None:
        self.joints = swap_sides(dof_names, "joint")
        self.feet = swap_sides(foot_names, "foot")
        self.joint_signs = tuple(-1.0 if name in hip_names else 1.0 for name in dof_names)
        mirrored_home = [self.joint_signs[i] * default_dof_pos[j] for i, j in enumerate(self.joints)]
        if any(abs(a - b) > 1e-6 for a, b in zip(mirrored_home, default_dof_pos)):
            raise MirrorUnavailable(f"the home pose {list(default_dof_pos)} is not its own mirror, so dof_pos "
                                    "(measured from it) has no mirror")

    def term(self, term: ObsTerm) -> SignedPermutation:
        name, size = term.name, term.size
        if name in SIGNS:
            return SignedPermutation(tuple(range(size)), SIGNS[name])
        if name in JOINT_MOTION:
            return SignedPermutation(self.joints, self.joint_signs)
        if name in JOINT_PARAMETERS:
            return SignedPermutation(self.joints, (1.0,) * size)
        if name in FOOT_TERMS:
            return SignedPermutation(self.feet, (1.0,) * size)
        if name in SCALARS:
            return SignedPermutation.identity(size)
        if name == "height_scan":
            nx, ny = term.params["points"]  # x-major grid centred on the base: point (i, j) <-> (i, ny - 1 - j)
            return SignedPermutation(tuple(i * ny + (ny - 1 - j) for i in range(nx) for j in range(ny)), (1.0,) * size)
        raise MirrorUnavailable(f"observation term {name!r} has no left-right mirror (world-frame or unknown)")

    def layout(self, layout: ObsLayout) -> SignedPermutation:
        return SignedPermutation.concat([self.term(term) for term in layout.terms])

    def of(self, layouts: LocomotionObsLayouts) -> Mirror:
        """The mirror of every group of ``layouts`` and of the action."""
        policy = self.layout(layouts.policy)
        groups = {"policy": policy, "critic": self.layout(layouts.critic_frame).repeated(layouts.critic_frames)}
        if layouts.history_length > 0:
            groups["history"] = policy.repeated(layouts.history_length)
        if layouts.noise_free_policy:
            groups["noise_free_policy"] = policy
        if layouts.privileged is not None:
            groups["privileged"] = self.layout(layouts.privileged)
        return Mirror(groups, SignedPermutation(self.joints, self.joint_signs))
