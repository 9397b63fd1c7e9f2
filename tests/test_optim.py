"""gooddetect.training.optim: the dense Adam follows torch.optim.Adam; the lazy k-mer table Adam follows dense Adam."""

import numpy as np
import torch

from gooddetect.training.optim import Adam, KmerTableAdam


def test_adam_follows_torch_adam_over_many_steps():
    torch.manual_seed(0)
    mine = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(4))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in mine]
    start = [p.detach().clone() for p in mine]
    ours, reference = Adam(mine, lr=0.03), torch.optim.Adam(theirs, lr=0.03)
    for step in range(50):
        for params, optimizer in ((mine, ours), (theirs, reference)):
            optimizer.zero_grad()
            (params[0].sin().sum() * (step + 1) + (params[1] ** 4).sum()).backward()
            optimizer.step()
    for a, b, before in zip(mine, theirs, start):
        assert (a.detach() - before).abs().min() > 0.01  # every entry moved
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_adam_state_round_trips_to_the_same_trajectory():
    torch.manual_seed(1)
    param = torch.nn.Parameter(torch.randn(6))
    first = Adam([param], lr=0.1)
    for _ in range(3):
        first.zero_grad()
        (param ** 2).sum().backward()
        first.step()
    copy = torch.nn.Parameter(param.detach().clone())
    second = Adam([copy], lr=0.1)
    second.load_state_dict(first.state_dict())
    for params, optimizer in (([param], first), ([copy], second)):
        optimizer.zero_grad()
        (params[0] ** 2).sum().backward()
        optimizer.step()
    assert torch.equal(param, copy)
    assert second.steps == 4


def test_adam_leaves_a_parameter_without_gradient_alone():
    used, unused = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    optimizer = Adam([used, unused], lr=0.1)
    (used * 3).sum().backward()
    optimizer.step()
    assert torch.equal(unused.detach(), torch.ones(2)) and not torch.equal(used.detach(), torch.ones(2))


def test_kmer_table_adam_equals_dense_adam_on_the_rows_it_touches():
    """Lazy Adam: a step moves exactly the rows in use, as torch's Adam would move them from the same state."""
    torch.manual_seed(1)
    table = torch.nn.Parameter(torch.randn(17, 3))
    table.data[16] = 0
    lazy, reference = KmerTableAdam(table, 0.05), torch.optim.Adam([torch.nn.Parameter(table.detach().clone())], lr=0.05)
    ddp = type("Single", (), {"world": 1})()
    for tokens in (torch.tensor([[1, 2, 16], [2, 5, 16]]), torch.tensor([[1, 1, 3]])):
        before = table.detach().clone()
        (lazy.lookup(tokens) ** 2).sum().backward()
        lazy.step(ddp)
        moved = set(torch.nonzero((table.detach() - before).abs().sum(dim=1)).flatten().tolist())
        assert moved == set(tokens.flatten().tolist()) - {16}
    # the rows used in both steps followed Adam exactly (rows 1 and 2 at step 1, row 1 at step 2)
    param = reference.param_groups[0]["params"][0]
    for tokens in (torch.tensor([[1, 2, 16], [2, 5, 16]]), torch.tensor([[1, 1, 3]])):
        reference.zero_grad()
        (param[tokens] ** 2).sum().backward()
        reference.step()
    np.testing.assert_allclose(table.detach()[1].numpy(), param.detach()[1].numpy(), rtol=1e-5, atol=1e-7)


def test_kmer_table_adam_after_catch_up_equals_dense_adam_on_every_row():
    """Rows a batch does not use move by their momentum, as in dense Adam; deferred, then applied by catch_up.
    Both optimizers start at step 20,000 (bias corrections ~1, where the closed form is exact)."""
    torch.manual_seed(2)
    table = torch.nn.Parameter(torch.randn(9, 4))
    table.data[8] = 0
    lazy = KmerTableAdam(table, 0.01)
    param = torch.nn.Parameter(table.detach().clone())
    dense = torch.optim.Adam([param], lr=0.01)
    lazy.steps = 20_000
    dense.state[param] = {"step": torch.tensor(20_000.0), "exp_avg": torch.zeros_like(param),
                          "exp_avg_sq": torch.zeros_like(param)}
    ddp = type("Single", (), {"world": 1})()
    batches = [[0, 1, 8], [2, 3], [0, 8], [4], [4, 5], [1], [6], [6], [0]] + [[7]] * 30
    for rows in batches:
        tokens = torch.tensor(rows)
        (lazy.lookup(tokens) ** 3).sum().backward()
        lazy.step(ddp)
        dense.zero_grad()
        (param[tokens] ** 3).sum().backward()
        dense.step()
    assert not torch.allclose(table.detach()[:7], param.detach()[:7], atol=1e-4)  # rows 0-6 still owe their steps
    lazy.catch_up()
    np.testing.assert_allclose(table.detach().numpy(), param.detach().numpy(), rtol=1e-5, atol=1e-6)
