"""Movement ops against PyTorch: views, cat/stack/split, pad modes, on contiguous and
non-contiguous inputs, with gradients."""
from __future__ import annotations

import numpy as np
import pytest

import strata

from .torch_ref import rand, run_both

X = (2, 3, 4)

MOVES = {
    "reshape": lambda m, x: x.reshape(4, 6),
    "reshape -1": lambda m, x: x.reshape(-1, 2),
    "reshape tuple": lambda m, x: m.m.reshape(x, (3, 8)),
    "view": lambda m, x: x.contiguous().view(6, 4),
    "view -1": lambda m, x: x.contiguous().view(-1),
    "flatten": lambda m, x: x.flatten(),
    "flatten(1)": lambda m, x: m.m.flatten(x, 1),
    "flatten(0,1)": lambda m, x: x.flatten(0, 1),
    "unflatten": lambda m, x: x.unflatten(-1, (2, 2)),
    "squeeze": lambda m, x: x[:, :1].squeeze(),
    "squeeze(dim)": lambda m, x: x[:, :1].squeeze(1),
    "squeeze(-1) no-op": lambda m, x: x.squeeze(-1),
    "unsqueeze": lambda m, x: x.unsqueeze(1),
    "unsqueeze(-1)": lambda m, x: m.m.unsqueeze(x, -1),
    "permute": lambda m, x: x.permute(2, 0, 1),
    "permute neg": lambda m, x: x.permute(-1, 0, -2),
    "transpose": lambda m, x: x.transpose(0, -1),
    "T": lambda m, x: x[0].T,
    "mT": lambda m, x: x.mT,
    "expand": lambda m, x: x[:, :, :1].expand(2, 3, 5),
    "expand new dims": lambda m, x: x.expand(3, 2, 3, 4),
    "expand -1": lambda m, x: x[:, :, :1].expand(-1, -1, 6),
    "expand_as": lambda m, x: x[:1].expand_as(x),
    "broadcast_to": lambda m, x: m.m.broadcast_to(x[0, :, :1], (5, 3, 2)),
    "repeat": lambda m, x: x.repeat(2, 1, 2),
    "repeat more dims": lambda m, x: x.repeat(2, 1, 1, 3),
    "tile": lambda m, x: x.tile((2,)),
    "tile more": lambda m, x: m.m.tile(x, (2, 1, 1, 1)),
    "flip": lambda m, x: x.flip(0, 2),
    "flip list": lambda m, x: m.m.flip(x, [-1]),
    "roll": lambda m, x: x.roll(1, 2),
    "roll neg multi": lambda m, x: m.m.roll(x, (-1, 2), (0, 1)),
    "roll flat": lambda m, x: x.roll(5),
    "contiguous": lambda m, x: x.mT.contiguous() * 1,
    "narrow": lambda m, x: x.narrow(-1, 1, 2),
    "narrow neg start": lambda m, x: m.m.narrow(x, 1, -2, 2),
    "slice steps": lambda m, x: x[::2, 1:, ::3],
    "slice neg": lambda m, x: x[-1:, :-1, -3:-1],
    "ellipsis None": lambda m, x: x[..., None, 1:3],
    "int index": lambda m, x: x[1, :, -1],
    "split int": lambda m, x: x.split(2, dim=-1),
    "split uneven": lambda m, x: m.m.split(x, 3, dim=2),
    "split sizes": lambda m, x: x.split([1, 2], dim=1),
    "chunk": lambda m, x: x.chunk(2, dim=-1),
    "chunk uneven": lambda m, x: m.m.chunk(x, 3, dim=1),
    "unbind-like": lambda m, x: tuple(x[i] for i in range(2)),
}


@pytest.mark.parametrize("name", sorted(MOVES))
def test_movement(ad_stack, name):
    x = rand(np.random.default_rng(20), X)
    run_both(MOVES[name], [x], ad_stack)


@pytest.mark.parametrize("name", ["reshape", "flatten", "permute", "expand_as", "repeat", "flip",
                                  "roll", "slice steps", "split int", "narrow", "unflatten"])
@pytest.mark.parametrize("layout", ["T", "step"])
def test_movement_non_contiguous(ad_stack, name, layout):
    x = rand(np.random.default_rng(21), X)
    run_both(MOVES[name], [x], ad_stack, layouts=[layout])


@pytest.mark.parametrize("dtype", ["int64", "bool", "uint8", "float16"])
def test_movement_other_dtypes(ad_stack, dtype):
    x = rand(np.random.default_rng(22), X, dtype)
    for name in ("reshape", "permute", "flip", "roll", "slice steps", "repeat", "expand_as"):
        run_both(MOVES[name], [x], ad_stack, grad=False)


def test_cat_stack(ad_stack):
    rng = np.random.default_rng(23)
    a, b, c = rand(rng, (2, 3)), rand(rng, (2, 1)), rand(rng, (2, 4))
    run_both(lambda m, x, y, z: m.m.cat([x, y, z], dim=1), [a, b, c], ad_stack)
    run_both(lambda m, x, y, z: m.m.cat((x, x * 2), -2), [a, b, c], ad_stack)
    run_both(lambda m, x, y, z: m.m.stack([x, x + 1, -x]), [a, b, c], ad_stack)
    run_both(lambda m, x, y, z: m.m.stack([x, x.flip(0)], dim=-1), [a, b, c], ad_stack)
    run_both(lambda m, x, y, z: m.m.stack([x, x], dim=1), [a, b, c], ad_stack, layouts=["T"] * 3)
    # an empty operand is fine
    run_both(lambda m, x, y: m.m.cat([x, y], 0), [a, np.zeros((0, 3))], ad_stack)
    # mixed dtypes promote like torch
    run_both(lambda m, x, y: m.m.cat([x, y], 0), [a.astype(np.float32), np.ones((1, 3), np.int64)],
             ad_stack, grad=False)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
@pytest.mark.parametrize("pad", [(1, 2), (2, 1, 0, 1), (1, 1, 2, 0)])
def test_pad(ad_stack, mode, pad):
    x = rand(np.random.default_rng(24), (2, 3, 4, 5))
    if mode == "constant":
        run_both(lambda m, t: m.F.pad(t, pad, value=0.5), [x], ad_stack)
        run_both(lambda m, t: m.F.pad(t, pad + (1, 0)), [x], ad_stack)
    else:  # torch pads the last len(pad)/2 dims of a batch: 2-3-D for one dim, 3-4-D for two
        inputs = [x[0], x[0, 0]] if len(pad) == 2 else [x, x[0]]
        for t_in in inputs:
            run_both(lambda m, t: m.F.pad(t, pad, mode=mode), [t_in], ad_stack)


def test_pad_negative_crops(ad_stack):
    x = rand(np.random.default_rng(25), (3, 6))
    run_both(lambda m, t: m.F.pad(t, (-1, 2)), [x], ad_stack)


def test_views_share_values_after_setitem(ad_stack):
    """A view read after writing into its base sees the new values (torch semantics) or,
    at least, the base holds them; both are checked against torch on the base."""
    x = strata.zeros(3, 4, backend=ad_stack)
    x[1] = 5.0
    x[:, 2] = strata.arange(3, backend=ad_stack).float()
    assert x.tolist() == [[0, 0, 0, 0], [5, 5, 1, 5], [0, 0, 2, 0]]


def test_shape_helpers(ad_stack):
    x = strata.zeros(2, 3, 4, backend=ad_stack)
    assert x.shape == (2, 3, 4) and x.size() == (2, 3, 4) and x.size(-1) == 4
    assert x.ndim == 3 and x.dim() == 3 and x.numel() == 24 and len(x) == 2
    assert x.shape.numel() == 24
    assert x.view(6, 4).shape == (6, 4)
