"""The leggedex Go2 MJCF (a plain robot file) and the model the backends prepare from its description."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np
import pytest

from leggedex.envs.backends.mjcf import HOME_KEY, build_model
from leggedex.robots import GO2

GO2_MODEL_PATH = GO2.model_path

REFERENCE = Path("/work/shared/reference/go2_menagerie/go2.xml")

LEGS = ("FL", "FR", "RL", "RR")
JOINTS = [f"{leg}_{part}_joint" for leg in LEGS for part in ("hip", "thigh", "calf")]
# published Go2 figures: link masses (kg) and joint ranges (rad)
TOTAL_MASS = 6.921 + 4 * (0.678 + 1.152 + 0.241352)
HIP_RANGE = (-1.0472, 1.0472)
FRONT_THIGH_RANGE = (-1.5708, 3.4907)
REAR_THIGH_RANGE = (-0.5236, 4.5379)
CALF_RANGE = (-2.7227, -0.83776)


@pytest.fixture(scope="module")
def robot() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(GO2_MODEL_PATH))


@pytest.fixture(scope="module")
def scene() -> mujoco.MjModel:
    return build_model(GO2)


def _expected_ranges() -> list[tuple[float, float]]:
    out = []
    for leg in LEGS:
        thigh = FRONT_THIGH_RANGE if leg[0] == "F" else REAR_THIGH_RANGE
        out += [HIP_RANGE, thigh, CALF_RANGE]
    return out


def _reference_inertials() -> dict[str, float]:
    root = ET.parse(REFERENCE).getroot()
    masses = {}
    for body in root.iter("body"):
        inertial = body.find("inertial")
        if inertial is not None:
            masses[body.get("name")] = float(inertial.get("mass"))
    return masses


def test_total_mass(robot: mujoco.MjModel) -> None:
    assert robot.body_mass.sum() == pytest.approx(TOTAL_MASS, rel=0.01)


@pytest.mark.skipif(not REFERENCE.exists(), reason="reference model not available")
def test_masses_match_reference(robot: mujoco.MjModel) -> None:
    ref = _reference_inertials()
    assert robot.body_mass.sum() == pytest.approx(sum(ref.values()), rel=0.01)
    for name, mass in ref.items():
        assert robot.body(name).mass[0] == pytest.approx(mass, rel=1e-6), name


def test_joint_order_and_ranges(robot: mujoco.MjModel, scene: mujoco.MjModel) -> None:
    hinge = [j for j in range(robot.njnt) if robot.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    assert [robot.joint(j).name for j in hinge] == JOINTS
    assert robot.nu == 0 and robot.nsensor == 0 and robot.nkey == 0  # a plain robot file
    actuated = [scene.joint(int(j)).name for j in scene.actuator_trnid[:, 0]]
    assert actuated == JOINTS == list(GO2.joints)
    np.testing.assert_allclose(robot.jnt_range[hinge], _expected_ranges(), atol=1e-6)
    assert robot.jnt_limited[hinge].all()
    # hip abduction about x, thigh and calf about y
    for j in hinge:
        axis = [1, 0, 0] if robot.joint(j).name.endswith("hip_joint") else [0, 1, 0]
        np.testing.assert_allclose(robot.jnt_axis[j], axis)


@pytest.mark.skipif(not REFERENCE.exists(), reason="reference model not available")
def test_joint_ranges_match_reference(robot: mujoco.MjModel) -> None:
    root = ET.parse(REFERENCE).getroot()
    classes = {d.get("class"): d for d in root.iter("default") if d.get("class")}
    ref_ranges = {}
    for joint in root.iter("joint"):
        cls = classes.get(joint.get("class"))
        j = cls.find("joint") if cls is not None else None
        if joint.get("name") and j is not None and j.get("range"):
            ref_ranges[joint.get("name")] = [float(v) for v in j.get("range").split()]
    assert sorted(ref_ranges) == sorted(JOINTS)
    for name, rng in ref_ranges.items():
        np.testing.assert_allclose(robot.joint(name).range, rng, atol=1e-6)


def test_torque_limits(scene: mujoco.MjModel) -> None:
    limits = [23.7, 23.7, 45.43] * 4
    assert scene.actuator_forcelimited.all()
    np.testing.assert_allclose(scene.actuator_forcerange[:, 1], limits)
    np.testing.assert_allclose(scene.actuator_forcerange[:, 0], [-v for v in limits])


def test_position_servo_gains(scene: mujoco.MjModel) -> None:
    np.testing.assert_allclose(scene.actuator_gainprm[:, 0], 20.0)
    np.testing.assert_allclose(scene.actuator_biasprm[:, 1], -20.0)
    np.testing.assert_allclose(scene.actuator_biasprm[:, 2], -0.5)


def test_sensors_and_sites_come_from_the_description(scene: mujoco.MjModel) -> None:
    names = [scene.sensor(i).name for i in range(scene.nsensor)]
    assert names[:4] == [f"leggedex_{leg}_foot_force" for leg in LEGS]
    assert len(names) == 4 + len(GO2.contact_bodies)  # every contact body is one sensor; calves sense the shin
    calf = scene.sensor("leggedex_FL_calf_contact_0")
    assert scene.geom(int(calf.objid[0])).name == "FL_calf"  # the shin geom, not the foot
    for leg in LEGS:
        np.testing.assert_allclose(scene.site(f"leggedex_{leg}_foot").pos, scene.geom(f"{leg}_foot").pos)


def test_simulation_options(robot: mujoco.MjModel) -> None:
    assert robot.opt.timestep == pytest.approx(0.005)
    assert robot.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL
    assert robot.opt.impratio == pytest.approx(1.0)
    assert robot.nmesh == 0
    hinge_dofs = robot.jnt_dofadr[robot.jnt_type == mujoco.mjtJoint.mjJNT_HINGE]
    np.testing.assert_allclose(robot.dof_damping[hinge_dofs], 0.1)


def test_geoms_primitive_no_self_collision(robot: mujoco.MjModel) -> None:
    primitive = {int(mujoco.mjtGeom.mjGEOM_BOX), int(mujoco.mjtGeom.mjGEOM_CAPSULE),
                 int(mujoco.mjtGeom.mjGEOM_CYLINDER), int(mujoco.mjtGeom.mjGEOM_SPHERE)}
    assert set(robot.geom_type.tolist()) <= primitive
    # robot geoms never collide with each other, always with a conaffinity-1 ground
    ct, ca = robot.geom_contype, robot.geom_conaffinity
    assert not np.any((ct[:, None] & ca[None, :]) | (ca[:, None] & ct[None, :]))
    assert np.all(ct & 1)
    for leg in LEGS:
        foot = robot.geom(f"{leg}_foot")
        assert foot.condim[0] == 3
        assert foot.type[0] == mujoco.mjtGeom.mjGEOM_SPHERE
        # default (stiff) contact parameters: no sinking feet
        np.testing.assert_allclose(foot.solref, [0.02, 1.0])
        np.testing.assert_allclose(foot.solimp, [0.9, 0.95, 0.001, 0.5, 2.0])


def test_home_keyframe_feet_on_ground(scene: mujoco.MjModel) -> None:
    key = scene.key(HOME_KEY)
    np.testing.assert_allclose(key.qpos[7:], [0.0, 0.8, -1.5] * 4)
    np.testing.assert_allclose(key.ctrl, [0.0, 0.8, -1.5] * 4)
    data = mujoco.MjData(scene)
    mujoco.mj_resetDataKeyframe(scene, data, key.id)
    mujoco.mj_forward(scene, data)
    for leg in LEGS:
        geom = scene.geom(f"{leg}_foot")
        bottom = data.geom_xpos[geom.id, 2] - geom.size[0]
        assert 0.0 <= bottom < 0.002, leg
    # nothing but the feet touches the ground
    touching = {scene.geom(int(data.contact.geom[i, 1])).name for i in range(data.ncon)}
    touching |= {scene.geom(int(data.contact.geom[i, 0])).name for i in range(data.ncon)}
    assert touching <= {"floor"} | {f"{leg}_foot" for leg in LEGS}


def test_scene_file_compiles() -> None:
    scene = GO2_MODEL_PATH.with_name("scene_flat.xml")
    model = mujoco.MjModel.from_xml_path(str(scene))
    assert model.geom("floor").group[0] == 0
    assert model.njnt == 13
