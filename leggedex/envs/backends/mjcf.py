"""MJCF preparation shared by the MuJoCo backends (``mujoco.batch`` on CPU, MuJoCo Warp): one robot description in,
one compiled ``MjModel`` and the indices both backends read out.

``build_model`` loads the robot's plain MJCF into an ``MjSpec`` and, from the ``RobotDescription``:
- checks that the model matches it (base body with a free joint first, the listed hinge joints and no others,
  foot geoms, contact bodies), naming every mismatch;
- replaces any actuators by position servos on ``joints`` in order (kp, kd, force-limited to ``torque_limits``),
  or torque motors (``actuation="motor"``, for a PD loop outside MuJoCo);
- adds a site on every foot geom, a contact sensor per foot (``found`` + net force against the world body) and
  per contact body (``found``; a body's foot geoms are left out, so a calf reports its shin only);
- adds the ``leggedex_home`` keyframe (home base height, default joint positions, targets at the default);
- adds the ground: a plane, or the neutral height grid of ``leggedex.envs.terrain`` as an hfield (group 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from leggedex.envs.terrain import Terrain
from leggedex.robots import RobotDescription

__all__ = ["HOME_KEY", "MujocoIndex", "add_flat_ground", "add_heightfield", "build_model"]

HOME_KEY = "leggedex_home"
_PREFIX = "leggedex_"


def add_flat_ground(spec: mujoco.MjSpec) -> None:
    """An infinite ground plane (geom ``floor``, group 0) on the world body."""
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0.0, 0.0, 0.05], group=0,
                            rgba=[0.35, 0.4, 0.45, 1.0])


def add_heightfield(spec: mujoco.MjSpec, terrain: Terrain, name: str = "terrain",
                    offset: tuple[float, float] = (0.0, 0.0)) -> None:
    """``terrain`` as an hfield geom (group 0) on the world body, grid cell (i, j) centred at
    (offset + (i + 0.5) * resolution, offset + (j + 0.5) * resolution), matching
    ``leggedex.envs.terrain.HeightSampler`` at the default offset."""
    heights = terrain.heights
    low, high = float(heights.min()), float(heights.max())
    span = max(high - low, 1e-3)
    nx, ny = heights.shape
    res = terrain.resolution
    # vertices span [-size, size] around the geom: (n - 1) * res / 2 puts them exactly res apart
    size_x, size_y = (nx - 1) * res / 2, (ny - 1) * res / 2
    base = 1.0  # depth of the box under the lowest point
    hfield = spec.add_hfield(name=name, nrow=ny, ncol=nx, size=[size_x, size_y, span, base])
    # MuJoCo's hfield rows run along y and columns along x; data is normalized to [0, 1]
    hfield.userdata = ((heights.T - low) / span).astype(np.float32).ravel().tolist()
    spec.worldbody.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_HFIELD, hfieldname=name, group=0,
                            pos=[offset[0] + res / 2 + size_x, offset[1] + res / 2 + size_y, low])


def _check_spec(spec: mujoco.MjSpec, robot: RobotDescription) -> None:
    """Every mismatch between the description and its model file, in one error."""
    where = f"robot {robot.name!r} ({robot.model_file})"
    problems = []
    bodies = {b.name: b for b in spec.bodies}
    base = bodies.get(robot.base_body)
    free = [j for j in base.joints if j.type == mujoco.mjtJoint.mjJNT_FREE] if base is not None else []
    if not free:
        problems.append(f"base_body {robot.base_body!r} is not a body with a free joint")
    elif spec.joints[0].name != free[0].name:
        problems.append("the base free joint must be the model's first joint")
    hinges = [j.name for j in spec.joints if j.type == mujoco.mjtJoint.mjJNT_HINGE]
    missing = [j for j in robot.joints if j not in hinges]
    unlisted = [j for j in hinges if j not in robot.joints]
    if missing or unlisted:
        problems.append(f"joints: missing in the model {missing}, hinge joints of the model not listed {unlisted}")
    others = [j.name for j in spec.joints if j.type not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_FREE)]
    if others:
        problems.append(f"only hinge joints can be actuated; the model also has {others}")
    geoms = {g.name for g in spec.geoms}
    missing_feet = [f for f in robot.feet if f not in geoms]
    if missing_feet:
        problems.append(f"feet: no geoms named {missing_feet}")
    missing_bodies = [b for b in robot.contact_bodies if b not in bodies]
    if missing_bodies:
        problems.append(f"contact_bodies: no bodies named {missing_bodies}")
    if problems:
        raise ValueError(f"{where} does not match its model file: " + "; ".join(problems))


def _add_actuators(spec: mujoco.MjSpec, robot: RobotDescription, actuation: str) -> None:
    for actuator in list(spec.actuators):
        spec.delete(actuator)
    for joint, limit in zip(robot.joints, robot.torque_limits):
        act = spec.add_actuator(name=_PREFIX + joint, target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        if actuation == "position":
            act.set_to_position(kp=robot.kp, kv=robot.kd)
            act.forcerange = [-limit, limit]
            act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        else:
            act.set_to_motor()
            act.ctrlrange = [-limit, limit]
            act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE


def _contact_sensor(spec: mujoco.MjSpec, name: str, objtype: mujoco.mjtObj, objname: str, data: int) -> None:
    # intprm: data bits (1 found, 2 force), reduce (1 mindist, 3 netforce; 0 none), num
    spec.add_sensor(name=name, type=mujoco.mjtSensor.mjSENS_CONTACT, objtype=objtype, objname=objname,
                    reftype=mujoco.mjtObj.mjOBJ_BODY, refname="world",
                    intprm=[data, 3 if data & 2 else 0, 1])


def _add_sensors_and_sites(spec: mujoco.MjSpec, robot: RobotDescription) -> None:
    feet = set(robot.feet)
    for foot in robot.feet:
        geom = spec.geom(foot)
        site = geom.parent.add_site(name=_PREFIX + foot, pos=list(geom.pos), quat=list(geom.quat), group=4,
                                    size=[robot.foot_radius, 0, 0])
        site.type = mujoco.mjtGeom.mjGEOM_SPHERE
        _contact_sensor(spec, f"{_PREFIX}{foot}_force", mujoco.mjtObj.mjOBJ_GEOM, foot, 1 | 2)
    for body_name in robot.contact_bodies:
        body = spec.body(body_name)
        own = [g.name for g in body.geoms]
        if not feet & set(own):
            _contact_sensor(spec, f"{_PREFIX}{body_name}_contact", mujoco.mjtObj.mjOBJ_BODY, body_name, 1)
            continue
        shins = [g for g in own if g not in feet]
        if any(not g for g in shins):
            raise ValueError(f"robot {robot.name!r}: contact body {body_name!r} carries a foot and unnamed geoms; "
                             "name its geoms so the non-foot ones can be sensed")
        for k, geom in enumerate(shins):
            _contact_sensor(spec, f"{_PREFIX}{body_name}_contact_{k}", mujoco.mjtObj.mjOBJ_GEOM, geom, 1)


def _add_home_key(spec: mujoco.MjSpec, robot: RobotDescription) -> None:
    for key in list(spec.keys):
        spec.delete(key)
    model = spec.compile()  # qpos0 and joint addresses of the prepared model
    qpos = model.qpos0.copy()
    qpos[0:3] = [0.0, 0.0, robot.home_base_height]
    qpos[3:7] = [1.0, 0.0, 0.0, 0.0]
    for joint, value in zip(robot.joints, robot.default_joint_pos):
        qpos[model.jnt_qposadr[model.joint(joint).id]] = value
    ctrl = np.array(robot.default_joint_pos) if model.actuator_biastype[0] == mujoco.mjtBias.mjBIAS_AFFINE \
        else np.zeros(model.nu)
    spec.add_key(name=HOME_KEY, qpos=qpos.tolist(), ctrl=ctrl.tolist())


def build_model(robot: RobotDescription, terrain: Terrain | None = None, actuation: str = "position",
                ground: Callable[[mujoco.MjSpec], None] | None = None) -> mujoco.MjModel:
    """The robot of ``robot`` prepared for leggedex on flat ground (``terrain`` None) or on ``terrain``;
    ``ground`` replaces both with a ground of its own (an experiment's: it must keep the height grid's surface)."""
    if actuation not in ("position", "motor"):
        raise ValueError(f"actuation must be 'position' or 'motor', got {actuation!r}")
    if not robot.model_path.is_file():
        raise FileNotFoundError(f"robot {robot.name!r}: model_file {robot.model_file} does not exist")
    spec = mujoco.MjSpec.from_file(str(robot.model_path))
    _check_spec(spec, robot)
    for sensor in list(spec.sensors):
        spec.delete(sensor)
    _add_actuators(spec, robot, actuation)
    _add_sensors_and_sites(spec, robot)
    if ground is not None:
        ground(spec)
    elif terrain is None:
        add_flat_ground(spec)
    else:
        add_heightfield(spec, terrain)
    _add_home_key(spec, robot)
    return spec.compile()


@dataclass
class MujocoIndex:
    """Where a prepared model keeps what a backend reads: qpos/qvel addresses in action order, sensor columns,
    sites, the base body and the robot geoms."""

    qpos_adr: np.ndarray  # (num_dofs,) qpos address of each actuated joint
    dof_adr: np.ndarray  # (num_dofs,) qvel address
    home_key: int
    dof_range: np.ndarray  # (num_dofs, 2)
    foot_site: np.ndarray  # (num_feet,)
    foot_found: np.ndarray  # (num_feet,) sensordata column of the found count
    foot_force: np.ndarray  # (num_feet, 3) sensordata columns of the net force
    body_found: np.ndarray  # (num_sensors,) sensordata column of each body-contact sensor
    body_of_sensor: np.ndarray  # (num_sensors,) which contact body each of those sensors belongs to
    base_body: int
    robot_geoms: np.ndarray  # every geom not on the world body
    nominal_friction: float

    @classmethod
    def of(cls, m: mujoco.MjModel, robot: RobotDescription) -> MujocoIndex:
        joints = [m.joint(j).id for j in robot.joints]
        foot_sensors = [m.sensor(f"{_PREFIX}{f}_force") for f in robot.feet]
        found, owner = [], []
        names = [m.sensor(i).name for i in range(m.nsensor)]
        for b, body in enumerate(robot.contact_bodies):
            for name in names:
                if name == f"{_PREFIX}{body}_contact" or name.startswith(f"{_PREFIX}{body}_contact_"):
                    found.append(m.sensor_adr[m.sensor(name).id])
                    owner.append(b)
        return cls(
            qpos_adr=m.jnt_qposadr[joints].astype(np.intp),
            dof_adr=m.jnt_dofadr[joints].astype(np.intp),
            home_key=m.key(HOME_KEY).id,
            dof_range=m.jnt_range[joints].copy(),
            foot_site=np.array([m.site(_PREFIX + f).id for f in robot.feet], dtype=np.intp),
            foot_found=np.array([m.sensor_adr[s.id] for s in foot_sensors], dtype=np.intp),
            foot_force=np.array([m.sensor_adr[s.id] + np.arange(1, 4) for s in foot_sensors], dtype=np.intp),
            body_found=np.array(found, dtype=np.intp),
            body_of_sensor=np.array(owner, dtype=np.intp),
            base_body=m.body(robot.base_body).id,
            robot_geoms=np.flatnonzero(m.geom_bodyid != 0).astype(np.intp),
            nominal_friction=float(m.geom_friction[m.geom(robot.feet[0]).id, 0]),
        )
