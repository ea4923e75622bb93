"""Reading a deploy contract for a robot-side loop: every field the loop needs is checked, and a missing one is
named, before a model is loaded or a step is run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTRACT_FORMAT = "leggedex-deploy-contract/1"

# what a joint-space loop needs from the contract's ``env`` section (docs/deploy.md)
REQUIRED_ENV_FIELDS = ("joint_names", "default_joint_pos", "action_scale", "clip_actions", "kp", "kd",
                       "torque_limits", "control_dt", "observation_clip", "num_actions")
PER_JOINT_FIELDS = ("default_joint_pos", "kp", "kd", "torque_limits")


class ContractError(ValueError):
    """A deploy contract a robot loop cannot run: names the file and the field."""


def check_contract(contract: dict[str, Any], source: str = "deploy.json") -> None:
    """Raise ``ContractError`` naming the first field a robot loop needs and the contract lacks or gets wrong."""
    def fail(message: str) -> None:
        raise ContractError(f"{source}: {message}")

    if contract.get("format") != CONTRACT_FORMAT:
        fail(f"not a leggedex deploy contract (format {contract.get('format')!r}, expected {CONTRACT_FORMAT!r})")
    for field in ("files", "inputs", "outputs", "env"):
        if field not in contract:
            fail(f"the contract has no {field!r} field")
    if "onnx" not in contract["files"]:
        fail("the contract has no 'files.onnx' field (the ONNX file to run)")
    env = contract["env"]
    for field in REQUIRED_ENV_FIELDS:
        if field not in env:
            fail(f"the contract has no 'env.{field}' field")
    n = len(env["joint_names"])
    if n != env["num_actions"]:
        fail(f"'env.joint_names' has {n} names for 'env.num_actions' {env['num_actions']}")
    for field in PER_JOINT_FIELDS:
        if len(env[field]) != n:
            fail(f"'env.{field}' has {len(env[field])} values for {n} joints")
    if not contract["inputs"]:
        fail("'inputs' is empty")
    for i, entry in enumerate(contract["inputs"]):
        for field in ("name", "size"):
            if field not in entry:
                fail(f"'inputs[{i}]' has no {field!r} field")
        terms = entry.get("frame_terms", entry.get("terms"))
        if terms is None:
            fail(f"'inputs[{i}]' ({entry['name']}) has no 'terms' (nor 'frame_terms'): the loop cannot assemble it")
        frames = int(entry.get("frames", 1))
        width = sum(int(term["size"]) for term in terms)
        if width * frames != entry["size"]:
            fail(f"'inputs[{i}]' ({entry['name']}) has size {entry['size']} but its terms give {frames} x {width}")
        for term in terms:
            for field in ("name", "start", "size", "scale"):
                if field not in term:
                    fail(f"a term of 'inputs[{i}]' ({entry['name']}) has no {field!r} field: {term}")


def load_contract(path: str | Path) -> dict[str, Any]:
    """Read and check ``path`` (a ``deploy.json``)."""
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"{path}: no such deploy contract (leggedex export writes deploy.json)")
    try:
        contract = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ContractError(f"{path}: not JSON: {error}") from None
    check_contract(contract, str(path))
    return contract
