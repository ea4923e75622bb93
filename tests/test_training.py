"""Fitting through the Lightning Trainer: policy freshness, exact resume, non-finite data, checkpoint checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch import seed_everything

from callbacks import IterationCheckpoint
from leggedex.data import OnPolicyDataModule
from leggedex.envs import PointMassReach
from leggedex.methods import PPO, NonFiniteError

from conftest import fit_with_checkpoints, flat_parameters, make_datamodule, make_ppo, make_trainer


class SpyPPO(PPO):
    """Records the parameters each rollout acts with, and what each update trains on."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.acting_params: list[torch.Tensor] = []
        self.updated_params: list[torch.Tensor] = []
        self.trained_actions: list[torch.Tensor] = []

    def act(self, obs):
        if self.storage.step == 0:
            self.acting_params.append(flat_parameters(self.actor_critic).clone())
        return super().act(obs)

    def training_step(self, batch, batch_idx):
        self.trained_actions.append(batch.storage.actions.clone())
        super().training_step(batch, batch_idx)
        self.updated_params.append(flat_parameters(self.actor_critic).clone())


class SpyDataModule(OnPolicyDataModule):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.collected_actions: list[torch.Tensor] = []

    def collect(self):
        rollout = super().collect()
        self.collected_actions.append(rollout.storage.actions.clone())
        return rollout


def test_each_rollout_uses_the_previous_update_and_is_trained_before_reuse(seeded) -> None:
    from conftest import SMALL_PPO

    ppo = SpyPPO(**SMALL_PPO)
    dm = SpyDataModule(env=PointMassReach, num_envs=8, seed=0)
    make_trainer(4).fit(ppo, datamodule=dm)
    assert len(ppo.acting_params) == len(ppo.updated_params) == len(dm.collected_actions) == 4
    for k in range(1, 4):
        assert torch.equal(ppo.acting_params[k], ppo.updated_params[k - 1]), f"rollout {k} used stale parameters"
    assert not torch.equal(ppo.acting_params[1], ppo.acting_params[0])
    for collected, trained in zip(dm.collected_actions, ppo.trained_actions):
        assert torch.equal(collected, trained), "a rollout was overwritten before it was trained on"


def train_state(ppo: PPO, trainer) -> dict:
    optimizer = trainer.optimizers[0]
    return {
        "params": flat_parameters(ppo),
        "buffers": {k: v.clone() for k, v in ppo.state_dict().items() if "normalizer" in k},
        "lr": optimizer.param_groups[0]["lr"],
        "adam": [s["exp_avg_sq"].clone() for s in optimizer.state.values()],
    }


def fit(max_epochs: int, ckpt_dir: Path | None = None, ckpt_path: str | None = None, **options):
    seed_everything(7, verbose=False)
    ppo = make_ppo(learning_rate=3e-3, **options)
    return ppo, fit_with_checkpoints(ppo, make_datamodule(num_envs=16), max_epochs, ckpt_dir, ckpt_path)


@pytest.mark.parametrize("options", [{}, {"symmetry_augmentation": True, "symmetry_loss_coef": 0.5}],
                         ids=["plain", "symmetry"])
def test_resume_is_exact(tmp_path: Path, options: dict) -> None:
    uninterrupted, trainer_a = fit(8, **options)
    _, trainer_b = fit(4, ckpt_dir=tmp_path, **options)
    assert (tmp_path / "model_4.ckpt").exists() and (tmp_path / "last.ckpt").exists()
    resumed, trainer_c = fit(8, ckpt_dir=tmp_path / "resumed", ckpt_path=str(tmp_path / "model_4.ckpt"), **options)
    assert trainer_c.current_epoch == 8
    a, c = train_state(uninterrupted, trainer_a), train_state(resumed, trainer_c)
    assert torch.equal(a["params"], c["params"])
    assert a["buffers"].keys() == c["buffers"].keys() and a["buffers"]
    for key in a["buffers"]:
        assert torch.equal(a["buffers"][key], c["buffers"][key]), key
    assert a["lr"] == c["lr"]
    assert all(torch.equal(x, y) for x, y in zip(a["adam"], c["adam"]))
    mirrors = 2 if options else 1  # with symmetry the normalizers also see each sample's mirror
    assert resumed.actor_critic.actor_normalizer.count == 8 * 8 * 16 * mirrors  # 8 iterations x 8 steps x 16 envs


class NaNEnv(PointMassReach):
    """Puts a NaN into one group at a chosen step."""

    def __init__(self, num_envs, seed=0, device="cpu", *, group="policy", at_step=20, **kwargs):
        super().__init__(num_envs, seed, device, **kwargs)
        self.group, self.at_step, self.steps = group, at_step, 0

    def step(self, actions):
        obs, rewards, dones, extras = super().step(actions)
        self.steps += 1
        if self.steps == self.at_step:
            if self.group == "rewards":
                rewards[2] = float("nan")
            else:
                obs[self.group][2, 1] = float("inf")
        return obs, rewards, dones, extras


@pytest.mark.parametrize(("group", "name"), [("critic", "observations['critic']"), ("rewards", "rewards")])
def test_non_finite_data_stops_training_and_keeps_the_last_checkpoint(tmp_path, seeded, group, name) -> None:
    # 8 steps per iteration: step 20 falls in iteration 2 (0-based), after checkpoints of iterations 1 and 2
    ppo = make_ppo()
    dm = make_datamodule(env=NaNEnv, group=group, at_step=20)
    ckpt = IterationCheckpoint(every_n_iterations=1, last_every_n_iterations=1, dirpath=str(tmp_path))
    with pytest.raises(NonFiniteError, match=rf"{name.replace('[', '.').replace(']', '.')} at iteration 2") as info:
        make_trainer(10, callbacks=[ckpt], enable_checkpointing=True).fit(ppo, datamodule=dm)
    assert "envs [2]" in str(info.value)
    last = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert last["epoch"] == 1  # written after iteration index 1, i.e. 2 iterations done
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    assert not (tmp_path / "model_3.ckpt").exists()


def test_non_finite_loss_names_the_loss(seeded, monkeypatch) -> None:
    ppo = make_ppo()
    original = PPO.ppo_losses

    def bad_losses(self, batch, optimizer):
        losses = original(self, batch, optimizer)
        losses["value_function"] = losses["value_function"] * float("nan")
        return losses

    monkeypatch.setattr(PPO, "ppo_losses", bad_losses)
    before = None
    with pytest.raises(NonFiniteError, match="loss at iteration 0"):
        trainer = make_trainer(2)
        trainer.fit(ppo, datamodule=make_datamodule())
    assert torch.isfinite(flat_parameters(ppo)).all()
    del before


class OtherPPO(PPO):
    pass


def test_checkpoint_of_another_method_is_refused(tmp_path, seeded) -> None:
    fit(4, ckpt_dir=tmp_path)
    with pytest.raises(ValueError,
                       match=r"written by method leggedex\.methods\.ppo\.PPO and cannot be loaded into .*OtherPPO"):
        make_trainer(6).fit(OtherPPO(**{k: v for k, v in make_ppo().hparams.items()}), datamodule=make_datamodule(),
                            ckpt_path=str(tmp_path / "last.ckpt"))


def test_checkpoint_loads_without_an_env(tmp_path) -> None:
    ppo, _ = fit(4, ckpt_dir=tmp_path)
    loaded = PPO.load_from_checkpoint(tmp_path / "last.ckpt")
    obs = torch.randn(5, 6)
    assert torch.equal(loaded.inference_policy(obs), ppo.inference_policy(obs))
