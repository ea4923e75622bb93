"""``leggedex export``: the deterministic deploy policy as TorchScript and ONNX, plus a deploy contract.

    leggedex export --config configs/go2_flat.yaml --ckpt_path logs/go2_flat/<run>/checkpoints/last.ckpt [--out DIR]

writes to ``DIR`` (default ``<run>/exports/<checkpoint stem>/``):

- ``policy.pt``: TorchScript, ``actions = policy(*inputs)``;
- ``policy.onnx``: ONNX (opset 17), one input per observation group the method reads (``policy_inputs()``,
  named after the group), output ``actions``; the batch dimension is dynamic;
- ``deploy.json``: the deploy contract (observation layout, joint order, default pose, action scale, PD gains,
  control period, clip values); see docs/deploy.md.

Both files hold ``method.inference_policy`` with the method's observation normalization folded in: they take
raw observations exactly as the env assembles them. Nothing here knows a particular method: a method exports
through ``policy_inputs()`` and ``inference_policy(*inputs)`` only. Arguments that this command does not know
(``--data.env.init_args.backend.init_args.num_threads 1``, ...) are passed to the config parser as overrides.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from leggedex.cli.checkpoint import (
    CommandHelpFormatter,
    build_env,
    check_policy_fits_env,
    load_method,
    parse_command_line,
)
from leggedex.cli.fit import run_dir_of_checkpoint
from leggedex.deploy.contract import CONTRACT_FORMAT
from leggedex.envs.vec_env import VecEnv
from leggedex.methods.base import OnPolicyMethod

ONNX_OPSET = 17


# --------------------------------------------------------------------------------------------- the policy
class DeployPolicy(nn.Module):
    """``forward(*inputs) = method.inference_policy(*inputs)``: the module that is traced and exported."""

    def __init__(self, method: OnPolicyMethod) -> None:
        super().__init__()
        # the method's networks are registered here (so tracing finds their parameters and buffers); the
        # LightningModule itself is kept out of the module tree, where tracing would touch its Trainer properties
        self.parts = nn.ModuleList(list(method.children()))
        self._method = (method,)
        self.input_names = tuple(method.policy_inputs())

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self._method[0].inference_policy(*inputs)


class StatefulDeployPolicy(nn.Module):
    """A recurrent deploy policy for one robot with its state inside (buffers of batch 1): ``forward(*obs)`` returns
    the actions and keeps the next state; ``reset()`` zeroes it (at start-up and whenever the robot restarts)."""

    def __init__(self, policy: DeployPolicy, shapes: dict[str, tuple[int, int]]) -> None:
        super().__init__()
        self.policy = policy
        self.state_names = list(shapes)
        for name, (layers, hidden) in shapes.items():
            self.register_buffer(name, torch.zeros(layers, 1, hidden))

    def _state(self) -> list[torch.Tensor]:
        return [getattr(self, name) for name in self.state_names]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        actions, *state = self.policy(*inputs, *self._state())
        for buffer, new in zip(self._state(), state):
            buffer.copy_(new)
        return actions

    def reset(self) -> torch.Tensor:
        for buffer in self._state():
            buffer.zero_()
        return self._state()[0]


def example_inputs(method: OnPolicyMethod, batch: int = 1, state: bool = True) -> tuple[torch.Tensor, ...]:
    """Zero observations of ``batch`` robots, followed by zero recurrent states (``state``) if the policy has any."""
    spec = method.built_obs_spec
    obs = tuple(torch.zeros(batch, spec.groups[group]) for group in method.policy_inputs())
    states = tuple(torch.zeros(layers, batch, hidden) for layers, hidden in method.recurrent_state().values())
    return obs + (states if state else ())


def export_torchscript(method: OnPolicyMethod, path: Path) -> None:
    policy = DeployPolicy(method).eval()
    trainable = [p for p in policy.parameters() if p.requires_grad]
    # traced with parameters that need no gradient, so that the saved policy's actions do not ask for one
    # (a robot-side ``actions.numpy()`` would raise)
    for parameter in trainable:
        parameter.requires_grad_(False)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if method.recurrent_state():
                stateful = StatefulDeployPolicy(policy, method.recurrent_state())
                # not checked by re-running: every call moves the state on
                traced = torch.jit.trace_module(stateful, {"forward": example_inputs(method, 1, state=False),
                                                           "reset": ()}, check_trace=False)
                traced.reset()
            else:
                traced = torch.jit.trace(policy, example_inputs(method, batch=2), check_trace=True)
            traced.save(str(path))
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


def state_io_names(method: OnPolicyMethod) -> tuple[list[str], list[str]]:
    """The ONNX input and output names of the recurrent state tensors (``h_in`` -> ``h_out``, ...)."""
    names = list(method.recurrent_state())
    return [f"{name}_in" for name in names], [f"{name}_out" for name in names]


def export_onnx(method: OnPolicyMethod, path: Path, opset: int = ONNX_OPSET) -> None:
    policy = DeployPolicy(method).eval()
    state_in, state_out = state_io_names(method)
    names = [*policy.input_names, *state_in]
    outputs = ["actions", *state_out]
    axes = {name: {0: "batch"} for name in [*policy.input_names, "actions"]}
    axes.update({name: {1: "batch"} for name in [*state_in, *state_out]})
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the TorchScript-based exporter: an MLP (or an LSTM / GRU) needs nothing more, and it needs no onnxscript
        torch.onnx.export(policy, example_inputs(method, batch=2), str(path), dynamo=False, opset_version=opset,
                          input_names=names, output_names=outputs, dynamic_axes=axes)


# ------------------------------------------------------------------------------------------- the contract
def deploy_contract(method: OnPolicyMethod, env: VecEnv, ckpt_path: str | Path | None = None) -> dict[str, Any]:
    """The deploy contract: the exported files' inputs and outputs plus what the env says a robot loop needs.

    ``env.deploy_contract()`` is used when the env has one (``LeggedLocomotion``); otherwise only sizes and the
    control period are known.
    """
    spec = method.built_obs_spec
    if hasattr(env, "deploy_contract"):
        env_contract = env.deploy_contract()
    else:
        env_contract = {
            "env": f"{type(env).__module__}.{type(env).__qualname__}",
            "observations": {name: {"size": int(size)} for name, size in env.obs_groups.items()},
            "num_actions": int(env.num_actions),
            "control_dt": float(env.step_dt),
        }
    inputs = []
    for group in method.policy_inputs():
        entry: dict[str, Any] = {"name": group, "size": int(spec.groups[group])}
        described = env_contract.get("observations", {}).get(group, {})  # terms, or frames of a stacked group
        entry.update({key: value for key, value in described.items() if key != "size"})
        inputs.append(entry)
    contract = {
        "format": CONTRACT_FORMAT,
        "method": method.method_name(),
        "checkpoint": str(ckpt_path) if ckpt_path is not None else None,
        "files": {"torchscript": "policy.pt", "onnx": "policy.onnx"},
        "inputs": inputs,
        "outputs": [{"name": "actions", "size": int(spec.num_actions)}],
        "normalization": "folded into the exported policy: feed raw observations as the env assembles them",
        "env": env_contract,
    }
    if method.recurrent_state():
        state_in, state_out = state_io_names(method)
        contract["recurrent_state"] = {
            "tensors": [{"name": name, "input": i, "output": o, "shape": [layers, "batch", hidden]}
                        for (name, (layers, hidden)), i, o in zip(method.recurrent_state().items(), state_in,
                                                                  state_out)],
            "reset": "zeros at start-up and whenever a robot restarts (its episode ends); ONNX: feed each output back "
                     "as the next step's input; TorchScript (one robot): the state is kept inside, call reset()",
        }
    return json.loads(json.dumps(contract))  # plain JSON types, so that it equals what read_contract returns


def write_contract(contract: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(contract, indent=2) + "\n")


def read_contract(path: Path) -> dict[str, Any]:
    contract = json.loads(Path(path).read_text())
    if contract.get("format") != CONTRACT_FORMAT:
        raise ValueError(f"{path} is not a leggedex deploy contract (format {contract.get('format')!r}, "
                         f"expected {CONTRACT_FORMAT!r})")
    return contract


def default_out_dir(ckpt_path: str | Path) -> Path:
    ckpt_path = Path(ckpt_path)
    run_dir = run_dir_of_checkpoint(str(ckpt_path))
    base = run_dir if run_dir is not None else ckpt_path.resolve().parent
    return base / "exports" / ckpt_path.stem


def check_export_support() -> None:
    """Raise a RuntimeError naming what ONNX export needs and is not installed (before anything is written)."""
    if importlib.util.find_spec("onnx") is None:
        raise RuntimeError('export writes ONNX and needs the onnx package: pip install -e ".[export]"')


def export(config_args: list[str], ckpt_path: str | Path, out_dir: str | Path | None = None) -> Path:
    """Load, check against the config's env, and write ``policy.pt``, ``policy.onnx``, ``deploy.json``."""
    check_export_support()
    cli, method = load_method(config_args, ckpt_path)
    env = build_env(cli, num_envs=1, seed=0)
    try:
        check_policy_fits_env(method, env, ckpt_path)
        contract = deploy_contract(method, env, ckpt_path)
    finally:
        env.close()
    out = Path(out_dir) if out_dir is not None else default_out_dir(ckpt_path)
    out.mkdir(parents=True, exist_ok=True)
    export_torchscript(method, out / "policy.pt")
    export_onnx(method, out / "policy.onnx")
    write_contract(contract, out / "deploy.json")
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        allow_abbrev=False, prog="leggedex export", description=__doc__, formatter_class=CommandHelpFormatter)
    p.add_argument("--config", action="append", required=True, help="training config (repeatable)")
    p.add_argument("--ckpt_path", required=True, help="checkpoint to export")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <run>/exports/<ckpt stem>/)")
    return p


def main(argv: list[str]) -> None:
    command_parser = parser()
    args, overrides = parse_command_line(command_parser, argv)
    try:
        check_export_support()
    except RuntimeError as error:
        command_parser.error(str(error))
    config_args = [item for path in args.config for item in ("--config", path)] + overrides
    out = export(config_args, args.ckpt_path, args.out)
    print(f"wrote {out / 'policy.pt'}, {out / 'policy.onnx'} and {out / 'deploy.json'}")
