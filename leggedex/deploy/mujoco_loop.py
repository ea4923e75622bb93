"""A robot-side reference loop in plain MuJoCo: the exported ONNX policy, fed as ``deploy.json`` says, drives any
robot model file through torque motors with the contract's joint PD.

Nothing here reads a checkpoint or builds a leggedex env: observations are assembled from the contract's terms,
actions become joint targets by its action scale and home pose, and the PD law, torque limits and control period
are its ``env`` fields. Run from the contract alone, the loop is what a robot's control process does, so it also
shows that the contract says everything such a process needs.

Per control period (``control_dt``): observe, run the policy on every robot at once, turn the actions into joint
targets; then the physics steps of the period, each with the PD evaluated every ``pd_dt`` from the latest target the
actuation latency lets through (the previous period's target for the first ``latency`` seconds).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from leggedex.robots.motor import torque_speed_clip

# observation terms a joint-space loop can read from the robot's own state (names as the contract gives them)
KNOWN_TERMS = ("command", "projected_gravity", "base_ang_vel", "base_lin_vel", "dof_pos", "dof_vel", "last_action")
DEFAULT_JOINT_SUFFIXES = ("_joint",)


class RobotModelError(ValueError):
    """A robot model file the loop cannot drive as the contract says: names the joints or actuators."""


@dataclass
class RobotModel:
    """A compiled robot model with the contract's joints located in it."""

    model: mujoco.MjModel
    joints: list[str]  # the model's joint for each contract joint name, in contract order
    qpos_adr: np.ndarray
    dof_adr: np.ndarray
    actuators: np.ndarray  # the motor driving each contract joint
    torque_per_ctrl: np.ndarray  # gear x gain of each motor: ctrl = tau / torque_per_ctrl
    base_body: int
    added: list[str] = field(default_factory=list)  # what the loop added to the file (ground, motors)


def _hinges(model: mujoco.MjModel) -> list[str]:
    return [model.joint(j).name for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]


def map_joints(contract_names: Sequence[str], model_joints: Sequence[str],
               suffixes: Sequence[str] = DEFAULT_JOINT_SUFFIXES) -> list[str]:
    """The model joint of each contract joint: the same name, else the name with one of ``suffixes``
    (``FL_hip`` -> ``FL_hip_joint``). Raises naming every contract joint the model lacks."""
    available = set(model_joints)
    mapped, missing = [], []
    for name in contract_names:
        found = next((c for c in [name, *(name + s for s in suffixes)] if c in available), None)
        (mapped.append(found) if found is not None else missing.append(name))
    if missing:
        tried = " or ".join(["the same name", *(f"name + {s!r}" for s in suffixes)])
        raise RobotModelError(f"the model has no hinge joint for contract joint(s) {missing} (tried {tried}); its "
                              f"hinge joints are {list(model_joints)}. Add a suffix rule with --joint_suffix")
    return mapped


def _drop_missing_visual_meshes(spec: mujoco.MjSpec, path: Path) -> list[str]:
    """Remove meshes whose files are absent when only non-colliding (visual) geoms use them; a colliding geom on a
    missing mesh is refused, since the physics would change."""
    mesh_dir = path.parent / (spec.meshdir or "")
    missing = {m.name or Path(m.file).stem: m for m in spec.meshes if m.file and not (mesh_dir / m.file).is_file()}
    if not missing:
        return []
    users = [g for g in spec.geoms if g.type == mujoco.mjtGeom.mjGEOM_MESH and g.meshname in missing]
    colliding = sorted({g.meshname for g in users if g.contype or g.conaffinity})
    if colliding:
        raise RobotModelError(f"{path}: mesh file(s) of colliding geoms are missing: {colliding} (in {mesh_dir})")
    for geom in users:
        spec.delete(geom)
    for mesh in missing.values():
        spec.delete(mesh)
    return [f"{len(missing)} visual mesh(es) without their files removed"]


def _has_ground(spec: mujoco.MjSpec) -> bool:
    return any(g.type in (mujoco.mjtGeom.mjGEOM_PLANE, mujoco.mjtGeom.mjGEOM_HFIELD) for g in spec.worldbody.geoms)


def _joint_actuators(model: mujoco.MjModel) -> dict[int, int]:
    """Joint id -> the actuator that drives it (joint transmissions only)."""
    return {int(model.actuator_trnid[a, 0]): a for a in range(model.nu)
            if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT}


def _is_motor(model: mujoco.MjModel, a: int) -> bool:
    return (model.actuator_gaintype[a] == mujoco.mjtGain.mjGAIN_FIXED
            and model.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_NONE
            and model.actuator_dyntype[a] == mujoco.mjtDyn.mjDYN_NONE
            and model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT)


def prepare_robot_model(path: str | Path, joint_names: Sequence[str], suffixes: Sequence[str] = DEFAULT_JOINT_SUFFIXES,
                        replace_actuators: bool = False, timestep: float | None = None) -> RobotModel:
    """Load a robot MJCF, add a ground plane if it has none and a torque motor on each contract joint without an
    actuator, and locate everything the loop reads. The model's own actuators on those joints are used when they
    are torque motors; any other kind is refused (naming it) unless ``replace_actuators``."""
    path = Path(path)
    if not path.is_file():
        raise RobotModelError(f"no robot model file {path}")
    spec = mujoco.MjSpec.from_file(str(path))
    added = _drop_missing_visual_meshes(spec, path)
    if not _has_ground(spec):
        spec.worldbody.add_geom(name="sim2sim_ground", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05],
                                rgba=[0.35, 0.4, 0.45, 1.0])
        added.append("a ground plane")
    if not spec.lights:  # for --video and --viewer only
        spec.worldbody.add_light(name="sim2sim_light", pos=[0, 0, 3], dir=[0, 0, -1],
                                 type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    if timestep is not None:
        spec.option.timestep = timestep
    model = spec.compile()
    mapped = map_joints(joint_names, _hinges(model), suffixes)
    driving = _joint_actuators(model)
    joint_ids = [model.joint(j).id for j in mapped]
    not_motors = [f"{model.actuator(driving[j]).name or driving[j]} on {model.joint(j).name}"
                  for j in joint_ids if j in driving and not _is_motor(model, driving[j])]
    if not_motors and not replace_actuators:
        raise RobotModelError(f"actuator(s) {not_motors} are not torque motors (gain fixed, no bias, no dynamics); "
                              "the loop drives torque motors with the contract's PD. Pass --replace_actuators to "
                              "put torque motors in their place")
    if replace_actuators or any(j not in driving for j in joint_ids):
        if replace_actuators:
            for actuator in [a for a in spec.actuators if a.target in mapped]:
                spec.delete(actuator)
        present = set() if replace_actuators else {model.joint(j).name for j in joint_ids if j in driving}
        for joint in mapped:
            if joint not in present:
                spec.add_actuator(name=f"sim2sim_{joint}", target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        added.append("torque motors" + (" in place of the model's actuators" if replace_actuators else ""))
        model = spec.compile()
        driving = _joint_actuators(model)
    actuators = np.array([driving[model.joint(j).id] for j in mapped])
    free = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
    if len(free) != 1:
        raise RobotModelError(f"{path} must have exactly one free joint (the floating base), found {len(free)}")
    if model.jnt_qposadr[free[0]] != 0:
        raise RobotModelError(f"{path}: the floating base's free joint must come first in the model")
    torque_per_ctrl = model.actuator_gear[actuators, 0] * model.actuator_gainprm[actuators, 0]
    return RobotModel(model, mapped, model.jnt_qposadr[joint_ids].copy(), model.jnt_dofadr[joint_ids].copy(),
                      actuators, torque_per_ctrl, int(model.jnt_bodyid[free[0]]), added)


def _rotate_inverse(quat: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v`` (3,) in the frame of the unit quaternion ``quat`` (w, x, y, z)."""
    out = np.zeros(3)
    conj = quat * np.array([1.0, -1.0, -1.0, -1.0])
    mujoco.mju_rotVecQuat(out, v, conj)
    return out


class MujocoRobotLoop:
    """Robots of one model, each in its own ``MjData``, driven by one ONNX policy from its deploy contract.

    Args:
        contract: a checked deploy contract (``load_contract``).
        robot: the prepared model (``prepare_robot_model``).
        onnx_path: the exported policy.
        num_robots: robots stepped side by side (one policy call per control period for all).
        pd_dt: PD period (s), a whole number of physics steps; None: every physics step.
        latency: actuation latency (s), a whole number of physics steps, at most one control period.
        velocity_limits: no-load joint speeds (rad/s, contract joint order) of a torque-speed curve
            (``leggedex.robots.motor``); None: the contract's ``env.velocity_limits`` (what training applied), and
            fixed torque limits when that is null or absent.
    """

    def __init__(self, contract: dict[str, Any], robot: RobotModel, onnx_path: str | Path, num_robots: int = 1,
                 pd_dt: float | None = None, latency: float = 0.0,
                 velocity_limits: Sequence[float] | None = None) -> None:
        import onnxruntime as ort

        env = contract["env"]
        self.contract, self.robot, self.model = contract, robot, robot.model
        self.control_dt = float(env["control_dt"])
        dt = float(self.model.opt.timestep)
        self.physics_steps = self._whole(self.control_dt, dt, "control_dt (env.control_dt)")
        self.pd_every = 1 if pd_dt is None else self._whole(pd_dt, dt, "the PD period (--pd_rate)")
        self.delay_steps = self._whole(latency, dt, "the latency (--latency_ms)", allow_zero=True)
        if self.delay_steps > self.physics_steps:
            raise ValueError(f"a latency of {1000 * latency:g} ms is longer than one control period "
                             f"({1000 * self.control_dt:g} ms): the loop keeps the previous period's target only")
        self.default = np.asarray(env["default_joint_pos"], dtype=np.float64)
        self.kp, self.kd = np.asarray(env["kp"], dtype=np.float64), np.asarray(env["kd"], dtype=np.float64)
        self.torque_limits = np.asarray(env["torque_limits"], dtype=np.float64)
        speeds = velocity_limits if velocity_limits is not None else env.get("velocity_limits")
        self.velocity_limits = None if speeds is None else np.asarray(speeds, dtype=np.float64)
        if self.velocity_limits is not None and (self.velocity_limits.shape != self.torque_limits.shape
                                                 or bool((self.velocity_limits <= 0).any())):
            raise ValueError(f"velocity_limits must be {len(self.torque_limits)} speeds > 0 (one per contract "
                             f"joint), got {list(speeds)}")
        self.action_scale, self.clip_actions = float(env["action_scale"]), float(env["clip_actions"])
        self.obs_clip = float(env["observation_clip"])
        self.inputs = contract["inputs"]
        for entry in self.inputs:
            terms = entry.get("frame_terms", entry.get("terms", []))
            unknown = [t["name"] for t in terms if t["name"] not in KNOWN_TERMS]
            if unknown:
                raise ValueError(f"input {entry['name']!r} needs observation term(s) {unknown} that a joint-space "
                                 f"loop cannot read from the robot (it reads {list(KNOWN_TERMS)})")
        self.session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        # a recurrent policy's state, fed back at every step and zeroed by reset()
        self.recurrent = (contract.get("recurrent_state") or {}).get("tensors", [])
        self.state: dict[str, np.ndarray] = {}
        self.data = [mujoco.MjData(self.model) for _ in range(num_robots)]
        self.num_robots = num_robots
        n, nj = num_robots, len(self.default)
        self.command = np.zeros((n, 3))
        self.last_action = np.zeros((n, nj))
        self.targets = np.tile(self.default, (n, 1))
        self.prev_targets = self.targets.copy()
        self.histories: dict[str, deque[np.ndarray]] = {}
        self._base_cache: dict[int, dict[str, np.ndarray]] = {}

    @staticmethod
    def _whole(period: float, dt: float, what: str, allow_zero: bool = False) -> int:
        steps = period / dt
        if abs(steps - round(steps)) > 1e-6 or (round(steps) < 1 and not allow_zero):
            raise ValueError(f"{what} = {period:g} s is not a whole number of the model's {dt:g} s physics steps")
        return int(round(steps))

    # ------------------------------------------------------------------ state
    def reset(self, qpos: np.ndarray | None = None, yaw: np.ndarray | None = None,
              joint_offsets: np.ndarray | None = None) -> None:
        """Every robot to the home pose (``qpos`` (n, nq) instead, if given), turned by ``yaw`` and with the joints
        offset by ``joint_offsets`` (n, joints), feet just above the ground; clears histories and last actions."""
        for i, data in enumerate(self.data):
            mujoco.mj_resetData(self.model, data)
            if qpos is not None:
                data.qpos[:] = qpos[i]
            else:
                data.qpos[self.robot.qpos_adr] = self.default + (joint_offsets[i] if joint_offsets is not None else 0)
                angle = 0.0 if yaw is None else float(yaw[i])
                data.qpos[3:7] = [np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)]
                data.qpos[2] = self._standing_height(data)
            mujoco.mj_forward(self.model, data)
        self._base_cache = {}
        self.last_action[:] = 0.0
        self.targets[:] = self.default
        self.prev_targets[:] = self.default
        self.histories = {}
        self.state = {}

    def _standing_height(self, data: mujoco.MjData, clearance: float = 0.002) -> float:
        """The base height at which the robot's lowest point is ``clearance`` above the ground (bisection on
        contacts: the model's geometry decides, whatever its feet)."""
        low, high = 0.0, 2.0
        for _ in range(30):
            data.qpos[2] = (low + high) / 2
            mujoco.mj_forward(self.model, data)
            touching = any(data.contact[k].dist < clearance for k in range(data.ncon))
            low, high = (data.qpos[2], high) if touching else (low, data.qpos[2])
        return float(high)

    def base_state(self, i: int) -> dict[str, np.ndarray]:
        """Robot ``i``'s base: position, quaternion, body-frame velocities, gravity direction (until it moves)."""
        cached = self._base_cache.get(i)
        if cached is not None:
            return cached
        data = self.data[i]
        quat = data.qpos[3:7]
        state = self._base_cache[i] = {
            "pos": data.qpos[0:3].copy(), "quat": quat.copy(),
            "lin_vel": _rotate_inverse(quat, data.qvel[0:3]),  # MuJoCo's free joint: world linear velocity
            "ang_vel": data.qvel[3:6].copy(),  # and body-frame angular velocity
            "gravity": _rotate_inverse(quat, np.array([0.0, 0.0, -1.0]))}
        return state

    def _raw_term(self, name: str, i: int) -> np.ndarray:
        data = self.data[i]
        if name in ("projected_gravity", "base_ang_vel", "base_lin_vel"):
            key = {"projected_gravity": "gravity", "base_ang_vel": "ang_vel", "base_lin_vel": "lin_vel"}[name]
            return self.base_state(i)[key]
        if name == "command":
            return self.command[i]
        if name == "dof_pos":
            return data.qpos[self.robot.qpos_adr] - self.default
        if name == "dof_vel":
            return data.qvel[self.robot.dof_adr]
        return self.last_action[i]

    def _frame(self, terms: Sequence[dict[str, Any]]) -> np.ndarray:
        """(n, width) one frame of ``terms`` for every robot: raw values x scale, concatenated, clipped."""
        rows = []
        for i in range(self.num_robots):
            parts = [self._raw_term(t["name"], i) * np.asarray(t["scale"], dtype=np.float64) for t in terms]
            rows.append(np.concatenate(parts))
        return np.clip(np.stack(rows), -self.obs_clip, self.obs_clip)

    def observations(self) -> dict[str, np.ndarray]:
        """The policy's inputs as the contract describes them; a stacked input keeps its last ``frames`` frames,
        oldest first, zeros for frames not yet seen since the reset. Call once per control period."""
        out = {}
        for entry in self.inputs:
            if "frames" in entry:
                frames = int(entry["frames"])
                history = self.histories.setdefault(entry["name"], deque(
                    [np.zeros((self.num_robots, entry["size"] // frames))] * frames, maxlen=frames))
                history.append(self._frame(entry["frame_terms"]))
                out[entry["name"]] = np.concatenate(list(history), axis=1)
            else:
                out[entry["name"]] = self._frame(entry["terms"])
        return out

    # ------------------------------------------------------------------ control
    def act(self, observations: dict[str, np.ndarray]) -> np.ndarray:
        feed = {entry["name"]: observations[entry["name"]].astype(np.float32) for entry in self.inputs}
        n = self.num_robots
        for tensor in self.recurrent:
            layers, _, hidden = tensor["shape"]
            feed[tensor["input"]] = self.state.get(tensor["name"], np.zeros((layers, n, hidden), dtype=np.float32))
        actions, *state = self.session.run(["actions", *(t["output"] for t in self.recurrent)], feed)
        self.state = {tensor["name"]: value for tensor, value in zip(self.recurrent, state)}
        return actions.astype(np.float64)

    def apply(self, actions: np.ndarray) -> None:
        """Clip the actions, make them the next targets and run one control period of physics."""
        action = np.clip(actions, -self.clip_actions, self.clip_actions)
        self.last_action[:] = action
        self.prev_targets[:] = self.targets
        self.targets[:] = self.default + self.action_scale * action
        self._base_cache = {}
        r = self.robot
        for i, data in enumerate(self.data):
            for k in range(self.physics_steps):
                if k % self.pd_every == 0:
                    target = self.prev_targets[i] if k < self.delay_steps else self.targets[i]
                    q, dq = data.qpos[r.qpos_adr], data.qvel[r.dof_adr]
                    tau = self.kp * (target - q) - self.kd * dq
                    tau = np.clip(tau, -self.torque_limits, self.torque_limits) if self.velocity_limits is None \
                        else torque_speed_clip(tau, dq, self.torque_limits, self.velocity_limits)
                    data.ctrl[r.actuators] = tau / r.torque_per_ctrl
                mujoco.mj_step(self.model, data)

    def step(self) -> np.ndarray:
        """Observe, act, apply: one control period; returns the actions."""
        actions = self.act(self.observations())
        self.apply(actions)
        return actions
