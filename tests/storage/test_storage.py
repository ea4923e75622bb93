"""RolloutStorage: GAE, refusal to overwrite, mini-batches."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from leggedex.storage import RolloutStorage


def fill(storage: RolloutStorage, rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor) -> None:
    for t in range(storage.num_steps):
        n = storage.num_envs
        storage.add(
            obs={"policy": torch.full((n, 1), float(t))},
            actions=torch.zeros(n, 1),
            log_probs=torch.zeros(n),
            action_mean=torch.zeros(n, 1),
            action_std=torch.ones(n, 1),
            values=values[t],
            rewards=rewards[t],
            dones=dones[t],
        )


def test_gae_matches_a_hand_computation() -> None:
    gamma, lam = 0.9, 0.8
    storage = RolloutStorage(1, 3, {"policy": 1}, 1, "cpu")
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.tensor([[False], [True], [False]])
    fill(storage, rewards, values, dones)
    last = torch.tensor([2.0])
    storage.compute_returns(last, gamma, lam)
    d2 = 3.0 + gamma * 2.0 - 1.5
    a2 = d2
    d1 = 2.0 - 1.0  # episode ended at t=1: no bootstrap from t=2
    a1 = d1
    d0 = 1.0 + gamma * 1.0 - 0.5
    a0 = d0 + gamma * lam * a1
    expected = torch.tensor([[a0], [a1], [a2]])
    assert torch.allclose(storage.advantages, expected)
    assert torch.allclose(storage.returns, expected + values)


def test_full_storage_refuses_new_steps_until_cleared() -> None:
    storage = RolloutStorage(2, 2, {"policy": 1}, 1, "cpu")
    z = torch.zeros(2, 2)
    fill(storage, z, z, torch.zeros(2, 2, dtype=torch.bool))
    assert storage.is_full
    with pytest.raises(RuntimeError, match="full"):
        fill(storage, z, z, torch.zeros(2, 2, dtype=torch.bool))
    storage.clear()
    fill(storage, z, z, torch.zeros(2, 2, dtype=torch.bool))


def test_mini_batches_cover_the_rollout_once_per_epoch() -> None:
    storage = RolloutStorage(4, 3, {"policy": 1}, 1, "cpu")
    z = torch.zeros(3, 4)
    fill(storage, z, z, torch.zeros(3, 4, dtype=torch.bool))
    batches = list(storage.mini_batches(num_mini_batches=3, num_epochs=2))
    assert len(batches) == 6
    first_epoch = torch.cat([b.obs["policy"] for b in batches[:3]]).flatten().sort().values
    assert torch.equal(first_epoch, storage.obs["policy"].flatten().sort().values)
    with pytest.raises(ValueError, match="exceeds the rollout size"):
        list(storage.mini_batches(num_mini_batches=13, num_epochs=1))


@pytest.mark.parametrize("shuffle", ["every_epoch", "once"])
def test_mini_batches_are_reshuffled_each_epoch_or_drawn_once(shuffle: str) -> None:
    storage = RolloutStorage(8, 4, {"policy": 1}, 1, "cpu")
    z = torch.zeros(4, 8)
    fill(storage, z, z, torch.zeros(4, 8, dtype=torch.bool))
    torch.manual_seed(0)
    indices = list(storage.batch_indices(num_mini_batches=4, num_epochs=3, shuffle=shuffle))
    epochs = [torch.stack(indices[e * 4:(e + 1) * 4]) for e in range(3)]
    for epoch in epochs:  # each epoch still covers the rollout once
        assert torch.equal(epoch.flatten().sort().values, torch.arange(32))
    same = [torch.equal(epochs[0], other) for other in epochs[1:]]
    assert same == ([True, True] if shuffle == "once" else [False, False])
    with pytest.raises(ValueError, match="shuffle must be one of"):
        list(storage.batch_indices(2, 1, shuffle="never"))


def random_storage(storage: RolloutStorage) -> RolloutStorage:
    generator = torch.Generator().manual_seed(1)
    for buffer in [*storage.obs.values(), storage.actions, storage.values, storage.advantages, storage.returns,
                   storage.log_probs, storage.action_mean, storage.action_std]:
        buffer.copy_(torch.randn(buffer.shape, generator=generator))
    return storage


@pytest.mark.parametrize("kind", ["ppo", "cts"])
def test_once_shuffled_mini_batches_equal_gathering_each_one_per_epoch(kind: str) -> None:
    from leggedex.storage.rollout import MiniBatch
    from leggedex.storage.rollout_cts import RolloutStorageCTS

    sizes = {"policy": 3, "privileged": 2, "history": 6, "critic": 4}
    storage = random_storage(RolloutStorage(6, 5, sizes, 2, "cpu") if kind == "ppo" else
                             RolloutStorageCTS(6, 5, sizes, 2, "cpu", teacher_envs=torch.arange(6) < 3))
    torch.manual_seed(0)
    served = list(storage.mini_batches(num_mini_batches=4, num_epochs=3, shuffle="once"))
    after_served = torch.rand(1)
    torch.manual_seed(0)
    flat = MiniBatch(storage.flat_obs(), *(x.flatten(0, 1) for x in (
        storage.actions, storage.values, storage.advantages, storage.returns, storage.log_probs,
        storage.action_mean, storage.action_std)))
    reference = [storage.mini_batch(idx, flat)  # what every epoch gathered before
                 for idx in storage.batch_indices(num_mini_batches=4, num_epochs=3, shuffle="once")]
    assert torch.equal(torch.rand(1), after_served)  # the same random draws
    assert len(served) == len(reference) == 12
    for got, want in zip(served, reference):
        assert type(got) is type(want)
        for f in fields(want):
            a, b = getattr(got, f.name), getattr(want, f.name)
            if isinstance(b, dict):
                assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in b)
            else:
                assert torch.equal(a, b), f.name
