"""On resume the options given run: one that differs from the checkpoint's is applied and said (learning rate,
max_epochs), one the checkpoint's networks fix is refused naming it, before any env or run directory."""

from __future__ import annotations

import pytest
import torch

from leggedex.cli import main

from conftest import REPO

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
SMALL = ["--data.num_envs", "16", "--model.num_steps_per_env", "8", "--model.schedule", "fixed",
         "--torch_threads", "1"]


@pytest.fixture
def checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", QUICKSTART, *SMALL, "--trainer.max_epochs", "2", "--run_name", "first"])
    (path,) = tmp_path.glob("logs/quickstart/*_first/checkpoints/last.ckpt")
    return path


def test_a_changed_learning_rate_and_max_epochs_are_applied_on_resume(checkpoint, capsys) -> None:
    capsys.readouterr()
    first_epoch = torch.load(checkpoint, weights_only=False)["epoch"]
    main(["fit", "--config", QUICKSTART, *SMALL, "--trainer.max_epochs", "3", "--model.learning_rate", "5e-4",
          "--ckpt_path", str(checkpoint)])
    assert "resuming with model.learning_rate = 0.0005 (the checkpoint ran 0.001)" in capsys.readouterr().err
    resumed = torch.load(checkpoint, weights_only=False)  # the resumed run writes on into the same last.ckpt
    # before: the checkpoint's options ran, with its learning rate 1e-3
    assert resumed["epoch"] == first_epoch + 1
    assert resumed["hyper_parameters"]["learning_rate"] == 5e-4
    assert resumed["optimizer_states"][0]["param_groups"][0]["lr"] == 5e-4


@pytest.mark.parametrize(("override", "named"), [
    (["--model.actor_hidden_dims", "[16, 16]"],
     r"model.actor_hidden_dims \(\[16, 16\]; the checkpoint has \[64, 64\]\)"),
    (["--model.activation", "tanh"], r"model.activation \('tanh'; the checkpoint has 'elu'\)"),
])
def test_an_option_the_networks_fix_is_refused_on_resume(checkpoint, override, named) -> None:
    runs = sorted(checkpoint.parents[2].iterdir())
    with pytest.raises(ValueError, match=rf"cannot resume .*last.ckpt with other {named}"):
        main(["fit", "--config", QUICKSTART, *SMALL, *override, "--ckpt_path", str(checkpoint)])
    assert sorted(checkpoint.parents[2].iterdir()) == runs  # no new run directory


def test_another_number_of_envs_is_refused_naming_the_option(checkpoint) -> None:
    with pytest.raises(ValueError, match=r"data.num_envs is 24, but the checkpoint holds the state of 16 envs"):
        main(["fit", "--config", QUICKSTART, *SMALL, "--data.num_envs", "24", "--ckpt_path", str(checkpoint)])
