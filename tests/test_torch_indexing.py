"""Indexing against PyTorch: basic and advanced __getitem__, __setitem__, gather/scatter family,
masked ops, take_along_dim, tril/triu; gradients through every differentiable form."""
from __future__ import annotations

import numpy as np
import pytest

import strata

from .torch_ref import rand, run_both

X = (4, 5, 3)


def _i(*vals):
    return np.array(vals, dtype=np.int64)


GETITEM = {
    "int": lambda m, x, i: x[2],
    "neg int": lambda m, x, i: x[-1, -2],
    "slice step": lambda m, x, i: x[1::2, ::2],
    "None ellipsis": lambda m, x, i: x[None, ..., 1],
    "ellipsis mid": lambda m, x, i: x[0, ..., None],
    "int tensor": lambda m, x, i: x[i],
    "int tensor dim1": lambda m, x, i: x[:, i],
    "int tensor 2d": lambda m, x, i: x[i.reshape(2, 2)],
    "two int tensors": lambda m, x, i: x[i, i],
    "int tensors split by slice": lambda m, x, i: x[i, :, i[:1] - 1],
    "int tensor + int": lambda m, x, i: x[1, i],
    "list index": lambda m, x, i: x[[0, 2, 2]],
    "neg int tensor": lambda m, x, i: x[i - 4],
    "bool mask full": lambda m, x, i: x[x > 0.5],
    "bool mask leading": lambda m, x, i: x[x.sum((1, 2)) > 0],
    "bool mask 2d": lambda m, x, i: x[x[..., 0] > 0],
    "bool mask dim1": lambda m, x, i: x[:, x[0, :, 0] > 0],
    "empty slice": lambda m, x, i: x[2:2],
}


@pytest.mark.parametrize("name", sorted(GETITEM))
def test_getitem(ad_stack, name):
    x = rand(np.random.default_rng(30), X)
    idx = _i(3, 0, 3, 1)
    run_both(GETITEM[name], [x, idx], ad_stack)


@pytest.mark.parametrize("name", ["slice step", "int tensor", "bool mask full", "two int tensors"])
def test_getitem_non_contiguous(ad_stack, name):
    x = rand(np.random.default_rng(31), X)
    run_both(GETITEM[name], [x, _i(3, 0, 3, 1)], ad_stack, layouts=["T", None])


def test_getitem_int_dtype(ad_stack):
    x = np.arange(60).reshape(X).astype(np.int32)
    for name in ("int tensor", "bool mask full", "slice step", "two int tensors"):
        run_both(GETITEM[name], [x, _i(3, 0, 3, 1)], ad_stack, grad=False)


SETITEM = {
    "int": lambda t, v: t.__setitem__(1, 7.0),
    "slice scalar": lambda t, v: t.__setitem__((slice(None), slice(1, None, 2)), -1.0),
    "slice tensor": lambda t, v: t.__setitem__((slice(0, 2), 0), v),
    "broadcast row": lambda t, v: t.__setitem__((slice(None), 2), v[0]),
    "bool mask": lambda t, v: t.__setitem__(t > 0.5, 0.0),
    "int tensor": None,  # needs the module to build the index: see test_setitem
    "ellipsis": lambda t, v: t.__setitem__((Ellipsis, 1), 4.0),
}


@pytest.mark.parametrize("name", sorted(SETITEM))
def test_setitem(ad_stack, name):
    x = rand(np.random.default_rng(32), X)
    v = rand(np.random.default_rng(33), (2, 3))

    def fn(m, t, vv):
        t = t.clone()
        if name == "int tensor":
            t[m.m.tensor([0, 3])] = 9.0
        else:
            SETITEM[name](t, vv)
        return t
    run_both(fn, [x, v], ad_stack, grad=False)


def test_setitem_int_and_cast(ad_stack):
    x = np.zeros((3, 4), np.int64)

    def fn(m, t):
        t = t.clone()
        t[0] = 2.7   # cast to the tensor dtype (truncation)
        t[1:, 1] = t[1:, 2] + 5
        return t
    run_both(fn, [x], ad_stack, grad=False)


GATHERS = {
    "gather": lambda m, x, i: x.gather(1, i),
    "gather fn": lambda m, x, i: m.m.gather(x, -2, i),
    "take_along_dim": lambda m, x, i: m.m.take_along_dim(x, i, dim=1),
    "scatter_add": lambda m, x, i: x.scatter_add(1, i, x[:, :2] * 3),
    "scatter_add fn": lambda m, x, i: m.m.scatter_add(x * 0, 1, i, x[:, :2]),
    "index_select": lambda m, x, i: x.index_select(0, i[0, :, 0]),
    "index_select dim2": lambda m, x, i: m.m.index_select(x, 2, i[0, 0, :2]),
}


@pytest.mark.parametrize("name", sorted(GATHERS))
def test_gather_family(ad_stack, name):
    rng = np.random.default_rng(34)
    x = rand(rng, X)
    i = rng.integers(0, 3, (4, 2, 3)).astype(np.int64)
    run_both(GATHERS[name], [x, i], ad_stack)


def test_scatter_unique(ad_stack):
    rng = np.random.default_rng(35)
    x = rand(rng, (3, 5))
    src = rand(rng, (3, 2))
    idx = np.stack([rng.permutation(5)[:2] for _ in range(3)]).astype(np.int64)
    run_both(lambda m, t, s, i: t.scatter(1, i, s), [x, src, idx], ad_stack)
    run_both(lambda m, t, s, i: t.scatter(1, i, 2.5), [x, src, idx], ad_stack)


def test_masked_fill_and_where_masks(ad_stack):
    rng = np.random.default_rng(36)
    x = rand(rng, X)
    mask = rng.random((5, 1)) < 0.5
    run_both(lambda m, t, k: t.masked_fill(k, -7.0), [x, mask], ad_stack)
    run_both(lambda m, t, k: m.m.masked_fill(t, t > 0, 0.0), [x, mask], ad_stack)
    run_both(lambda m, t, k: t.masked_fill(k, float("-inf")).softmax(-1).nan_to_num(),
             [np.repeat(x[..., :1], 3, -1), mask], ad_stack, grad=False)


@pytest.mark.parametrize("k", [0, 1, -1, 5, -7])
def test_tril_triu(ad_stack, k):
    x = rand(np.random.default_rng(37), (2, 4, 5))
    run_both(lambda m, t: t.tril(k), [x], ad_stack)
    run_both(lambda m, t: m.m.triu(t, diagonal=k), [x], ad_stack)
    run_both(lambda m, t: t.triu(k), [x[0]], ad_stack, layouts=["T"])


def test_index_errors(ad_stack):
    x = strata.zeros(3, 4, backend=ad_stack)
    with pytest.raises(IndexError):
        x[3]
    with pytest.raises(IndexError):
        x[:, -5]
    with pytest.raises(IndexError):
        x[strata.tensor([0, 3], backend=ad_stack)]
    with pytest.raises(IndexError):
        x[strata.tensor([-4], backend=ad_stack)]
    with pytest.raises(IndexError):
        x.gather(1, strata.tensor([[4]], backend=ad_stack))
    with pytest.raises(IndexError):
        x.index_select(0, strata.tensor([5], backend=ad_stack))
    with pytest.raises(IndexError):
        x[0, 0, 0]
    with pytest.raises(IndexError):
        x[strata.tensor([True, False], backend=ad_stack)]
