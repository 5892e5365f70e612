"""matmul / @ with broadcast batch dims, mm, bmm, dot, outer, einsum against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import strata

from .torch_ref import rand, run_both

MATMUL_SHAPES = [
    ((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 2)), ((3, 4), (4,)), ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((1, 3, 4), (2, 4, 1)), ((5,), (2, 5, 3)),
    ((2, 3, 4), (4,)), ((0, 4), (4, 3)), ((3, 0), (0, 2)), ((1, 1), (1, 1)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=[f"{a}@{b}" for a, b in MATMUL_SHAPES])
def test_matmul_shapes(ad_stack, sa, sb):
    rng = np.random.default_rng(40)
    a, b = rand(rng, sa), rand(rng, sb)
    run_both(lambda m, x, y: x @ y, [a, b], ad_stack)
    run_both(lambda m, x, y: m.m.matmul(x, y), [a.astype(np.float32), b.astype(np.float32)],
             ad_stack)


@pytest.mark.parametrize("layouts", [["T", None], [None, "T"], ["T", "T"], ["step", "T"]])
def test_matmul_non_contiguous(ad_stack, layouts):
    rng = np.random.default_rng(41)
    a, b = rand(rng, (2, 3, 4)), rand(rng, (2, 4, 5))
    run_both(lambda m, x, y: x @ y, [a, b], ad_stack, layouts=layouts)


@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_matmul_int(ad_stack, dtype):
    rng = np.random.default_rng(42)
    a, b = rand(rng, (3, 4), dtype), rand(rng, (4, 2), dtype)
    run_both(lambda m, x, y: x @ y, [a, b], ad_stack, grad=False)


def test_mm_bmm_dot_outer(ad_stack):
    rng = np.random.default_rng(43)
    a, b = rand(rng, (3, 4)), rand(rng, (4, 2))
    run_both(lambda m, x, y: m.m.mm(x, y), [a, b], ad_stack)
    run_both(lambda m, x, y: x.mm(y), [a, b], ad_stack)
    a3, b3 = rand(rng, (2, 3, 4)), rand(rng, (2, 4, 5))
    run_both(lambda m, x, y: m.m.bmm(x, y), [a3, b3], ad_stack)
    v, w = rand(rng, (5,)), rand(rng, (5,))
    run_both(lambda m, x, y: m.m.dot(x, y), [v, w], ad_stack)
    run_both(lambda m, x, y: x.dot(y), [v, w], ad_stack)
    run_both(lambda m, x, y: m.m.outer(x, y[:3]), [v, w], ad_stack)
    run_both(lambda m, x, y: x.outer(y), [v, w], ad_stack)
    run_both(lambda m, x, y: x @ y + 1.0, [a, b], ad_stack)


EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 2)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij->ji", [(3, 4)]), ("ii->i", [(4, 4)]), ("ii", [(4, 4)]), ("ij->", [(3, 4)]),
    ("i,j->ij", [(3,), (4,)]), ("i,i->", [(5,), (5,)]), ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 2)]), ("ij,ij->i", [(3, 4), (3, 4)]),
    ("ijk->kj", [(2, 3, 4)]), ("ij, jk -> ik", [(3, 4), (4, 2)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUMS, ids=[e for e, _ in EINSUMS])
def test_einsum(ad_stack, eq, shapes):
    rng = np.random.default_rng(44)
    arrs = [rand(rng, s) for s in shapes]
    run_both(lambda m, *xs: m.m.einsum(eq, *xs), arrs, ad_stack)


def test_einsum_list_operands(ad_stack):
    rng = np.random.default_rng(45)
    a, b = rand(rng, (3, 4)), rand(rng, (4, 2))
    run_both(lambda m, x, y: m.m.einsum("ij,jk->ik", [x, y]), [a, b], ad_stack)


def test_linear_layer_chain(ad_stack):
    rng = np.random.default_rng(46)
    x, w1, b1, w2 = rand(rng, (8, 5)), rand(rng, (6, 5)), rand(rng, (6,)), rand(rng, (3, 6))
    run_both(lambda m, x, w, b, v: ((x @ w.T + b).tanh() @ v.T).softmax(-1),
             [x, w1, b1, w2], ad_stack)


def test_matmul_shape_errors_name_shapes(ad_stack):
    a = strata.ones(3, 4, backend=ad_stack)
    with pytest.raises(ValueError, match=r"\(3, 4\) @ \(5, 2\)"):
        a @ strata.ones(5, 2, backend=ad_stack)
    with pytest.raises(ValueError, match="matmul"):
        strata.ones(2, 3, 4, backend=ad_stack) @ strata.ones(3, 4, 5, backend=ad_stack)
    with pytest.raises((ValueError, RuntimeError)):
        strata.tensor(1.0, backend=ad_stack) @ a
