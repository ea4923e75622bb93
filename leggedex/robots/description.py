"""``RobotDescription``: the facts about a legged robot that a task and every simulator backend share.

A backend reads the model file and prepares it from this description (actuators, sensors, sites and the home
keyframe are added by ``leggedex.envs.backends.mjcf``), so a plain robot MJCF needs no hand edits; the task reads
the same description for joint order, feet, hips and the legs' contact bodies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RobotDescription:
    """A floating-base legged robot.

    Attributes:
        name: short name, used in messages.
        model_file: robot MJCF without ground, actuators, contact sensors or keyframes of its own that the task
            relies on (any present are replaced). Relative paths are relative to the current directory.
        base_body: the body carrying the free joint (the base, whose pose and velocities the task reads).
        joints: the actuated hinge joints in action order; every hinge joint of the model must be listed.
        feet: foot geoms in foot order (spheres of radius ``foot_radius``); a foot's position is its geom centre.
        foot_radius: foot sphere radius (m): the sole is this far below the foot position.
        contact_bodies: bodies whose ground contact the backend reports (``body_contact``); the foot geoms of a
            body are not counted, so a calf reports its shin only.
        leg_bodies: per part name (e.g. ``thigh``, ``calf``) the contact bodies of that part, in foot order.
        hip_joints: the hip (abduction) joints, a subset of ``joints``.
        default_joint_pos: joint positions of the home pose, in ``joints`` order (rad).
        home_base_height: base height (m) of the home pose with the feet resting on flat ground.
        kp, kd: nominal PD gains of every joint (Nm/rad, Nm s/rad).
        torque_limits: motor torque limits in ``joints`` order (Nm, symmetric).
        velocity_limits: the motors' no-load joint speeds in ``joints`` order (rad/s), for a backend's torque-speed
            curve (``leggedex.robots.motor``); None when the description does not give them.
        joint_suffix: removed from joint names to give the policy-facing ``dof_names`` (``FL_hip_joint`` ->
            ``FL_hip``).
    """

    name: str
    model_file: str
    base_body: str
    joints: tuple[str, ...]
    feet: tuple[str, ...]
    foot_radius: float
    contact_bodies: tuple[str, ...]
    hip_joints: tuple[str, ...]
    default_joint_pos: tuple[float, ...]
    home_base_height: float
    kp: float
    kd: float
    torque_limits: tuple[float, ...]
    leg_bodies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    joint_suffix: str = "_joint"
    velocity_limits: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.joints)
        problems = []
        if n == 0:
            problems.append("joints is empty")
        if len(set(self.joints)) != n:
            problems.append("joints has duplicates")
        for what, values in (("default_joint_pos", self.default_joint_pos), ("torque_limits", self.torque_limits)):
            if len(values) != n:
                problems.append(f"{what} has {len(values)} values for {n} joints")
        if any(t <= 0 for t in self.torque_limits):
            problems.append("torque_limits must be > 0")
        if self.velocity_limits is not None:
            if len(self.velocity_limits) != n:
                problems.append(f"velocity_limits has {len(self.velocity_limits)} values for {n} joints")
            elif any(v <= 0 for v in self.velocity_limits):
                problems.append("velocity_limits must be > 0")
        if not self.feet:
            problems.append("feet is empty")
        if self.foot_radius <= 0:
            problems.append(f"foot_radius must be > 0, got {self.foot_radius}")
        if self.kp <= 0 or self.kd < 0:
            problems.append(f"PD gains must be kp > 0, kd >= 0, got kp={self.kp}, kd={self.kd}")
        unknown_hips = [j for j in self.hip_joints if j not in self.joints]
        if unknown_hips:
            problems.append(f"hip_joints {unknown_hips} are not among joints")
        for part, bodies in self.leg_bodies.items():
            if len(bodies) != len(self.feet):
                problems.append(f"leg_bodies[{part!r}] has {len(bodies)} bodies for {len(self.feet)} feet")
            missing = [b for b in bodies if b not in self.contact_bodies]
            if missing:
                problems.append(f"leg_bodies[{part!r}] {missing} are not among contact_bodies")
        if problems:
            raise ValueError(f"robot description {self.name!r}: " + "; ".join(problems))

    @property
    def model_path(self) -> Path:
        return Path(self.model_file)

    @property
    def dof_names(self) -> list[str]:
        """Policy-facing joint names (``joints`` without ``joint_suffix``), in action order."""
        return [j.removesuffix(self.joint_suffix) for j in self.joints]
