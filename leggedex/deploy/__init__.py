"""The robot side of a deployed policy, written against the deploy contract (``deploy.json``) alone: reading and
checking a contract, and a plain MuJoCo loop that runs the exported ONNX policy on any robot model file."""

from leggedex.deploy.contract import ContractError, check_contract, load_contract
from leggedex.deploy.mujoco_loop import MujocoRobotLoop, RobotModelError, prepare_robot_model

__all__ = ["ContractError", "MujocoRobotLoop", "RobotModelError", "check_contract", "load_contract",
           "prepare_robot_model"]
