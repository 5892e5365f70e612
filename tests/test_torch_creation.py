"""Creation and conversion against PyTorch: tensor/from_numpy/zeros/ones/full/*_like/arange/
linspace/eye/rand*, numpy/tolist/item/to/float()..., __array__, DLPack."""
from __future__ import annotations

import numpy as np
import pytest

import strata
from strata.core.dtype import as_dtype

from .torch_ref import dname, fit_backend, supported, torch

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def same(s, t):
    assert dname(s.dtype) == dname(t.dtype), f"dtype {dname(s.dtype)}, torch {dname(t.dtype)}"
    assert tuple(s.shape) == tuple(t.shape), f"shape {tuple(s.shape)}, torch {tuple(t.shape)}"
    np.testing.assert_allclose(np.asarray(s.tolist(), dtype=np.float64),
                               np.asarray(t.tolist(), dtype=np.float64), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("data", [
    [[1.0, 2.0], [3.0, 4.0]], [1, 2, 3], [True, False], 3.5, 7, True, [], [[1, 2.5]],
    [[True, 2]], np.arange(6, dtype=np.int32).reshape(2, 3), np.float64(2.0), np.array(1.5),
    [np.float32(1.0), 2.0],
], ids=lambda d: repr(d)[:20])
def test_tensor_infers_dtype_like_torch(ad_stack, data):
    t = torch.tensor(data)
    if not supported(ad_stack, t.dtype):
        pytest.skip(f"{ad_stack} has no {dname(t.dtype)}")
    same(strata.tensor(data, backend=ad_stack), t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_with_dtype(ad_stack, dtype):
    data = [[0, 1, 2], [3, 0, 1]]
    if not supported(ad_stack, dtype):
        pytest.skip(f"{ad_stack} has no {dtype}")
    s = strata.tensor(data, dtype=getattr(strata, dtype), backend=ad_stack)
    same(s, torch.tensor(data, dtype=getattr(torch, dtype)))
    assert s.dtype is as_dtype(dtype)


def test_creation_functions(ad_stack):
    B = ad_stack
    pairs = [
        (strata.zeros(2, 3, backend=B), torch.zeros(2, 3)),
        (strata.zeros((2, 3), dtype=strata.int64, backend=B), torch.zeros((2, 3), dtype=torch.int64)),
        (strata.ones(4, backend=B), torch.ones(4)),
        (strata.ones((), backend=B), torch.ones(())),
        (strata.full((2, 2), 7, backend=B), torch.full((2, 2), 7)),
        (strata.full((2,), 1.5, backend=B), torch.full((2,), 1.5)),
        (strata.full((2,), True, backend=B), torch.full((2,), True)),
        (strata.arange(5, backend=B), torch.arange(5)),
        (strata.arange(1, 4, backend=B), torch.arange(1, 4)),
        (strata.arange(0, 1, 0.1, backend=B), torch.arange(0, 1, 0.1)),
        (strata.arange(5, 0, -2, backend=B), torch.arange(5, 0, -2)),
        (strata.arange(0.5, 3, backend=B), torch.arange(0.5, 3)),
        (strata.linspace(0, 1, 5, backend=B), torch.linspace(0, 1, 5)),
        (strata.linspace(-2, 3, 1, backend=B), torch.linspace(-2, 3, 1)),
        (strata.eye(3, backend=B), torch.eye(3)),
        (strata.eye(2, 4, backend=B), torch.eye(2, 4)),
        (strata.eye(3, dtype=strata.int32, backend=B), torch.eye(3, dtype=torch.int32)),
    ]
    for s, t in pairs:
        same(s, t)
        assert s.backend == B
    if supported(B, "float64"):
        same(strata.arange(6, dtype=strata.float64, backend=B), torch.arange(6, dtype=torch.float64))
        same(strata.linspace(3, -1, 9, dtype=strata.float64, backend=B),
             torch.linspace(3, -1, 9, dtype=torch.float64))


def test_like_functions(ad_stack):
    base_s = strata.tensor([[1, 2, 3]], dtype=strata.int32, backend=ad_stack)
    base_t = torch.tensor([[1, 2, 3]], dtype=torch.int32)
    wide = "float64" if supported(ad_stack, "float64") else "float32"
    for name in ("zeros_like", "ones_like"):
        same(getattr(strata, name)(base_s), getattr(torch, name)(base_t))
        same(getattr(strata, name)(base_s, dtype=getattr(strata, wide)),
             getattr(torch, name)(base_t, dtype=getattr(torch, wide)))
    same(strata.full_like(base_s, 4), torch.full_like(base_t, 4))
    assert strata.rand_like(base_s.float()).shape == (1, 3)
    assert strata.randn_like(base_s.to(getattr(strata, wide))).dtype is getattr(strata, wide)
    assert strata.zeros_like(base_s).backend == ad_stack


def test_random_creation(ad_stack):
    B = ad_stack
    strata.manual_seed(0)
    a = strata.rand(2000, backend=B)
    strata.manual_seed(0)
    b = strata.rand(2000, backend=B)
    assert a.dtype is strata.float32 and a.tolist() == b.tolist()
    v = a.numpy()
    assert 0.0 <= v.min() and v.max() < 1.0 and abs(v.mean() - 0.5) < 0.03
    wide = strata.float64 if supported(B, "float64") else strata.float32
    n = strata.randn(4000, dtype=wide, backend=B).numpy()
    assert abs(n.mean()) < 0.06 and abs(n.std() - 1.0) < 0.05
    r = strata.randint(3, 9, (1000,), backend=B)
    assert r.dtype is strata.int64 and set(r.tolist()) == set(range(3, 9))
    c = strata.rand(1000, backend=B)
    assert c.tolist() != b.tolist()  # the generator advanced


def test_conversions(ad_stack):
    x = strata.tensor([[1.5, -2.0], [3.25, 0.0]], backend=ad_stack)
    t = torch.tensor([[1.5, -2.0], [3.25, 0.0]])
    assert x.tolist() == t.tolist()
    assert strata.tensor(2.5, backend=ad_stack).item() == 2.5
    assert isinstance(strata.tensor(3, backend=ad_stack).item(), int)
    assert isinstance(strata.tensor(True, backend=ad_stack).item(), bool)
    np.testing.assert_array_equal(x.numpy(), t.numpy())
    np.testing.assert_array_equal(np.asarray(x), t.numpy())
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    for meth in ("float", "double", "half", "int", "long", "bool"):
        if supported(ad_stack, getattr(t, meth)().dtype):
            same(getattr(x, meth)(), getattr(t, meth)())
    for d in DTYPES:
        if supported(ad_stack, d):
            same(x.to(as_dtype(d)), t.to(getattr(torch, d)))
    assert float(strata.tensor([2.5], backend=ad_stack)) == 2.5
    assert int(strata.tensor(7, backend=ad_stack)) == 7
    with pytest.raises((ValueError, RuntimeError)):
        x.item()


def test_from_numpy_keeps_dtype_and_values(ad_stack):
    for d in ("float64", "float32", "int64", "uint8", "bool", "float16", "int8", "int32"):
        if not supported(ad_stack, d):
            continue
        a = (np.arange(6) % 3).reshape(2, 3).astype(d)
        s = strata.from_numpy(a, backend=ad_stack)
        same(s, torch.from_numpy(a))
    nc = fit_backend(np.arange(12.0).reshape(3, 4), ad_stack)[:, ::2]
    same(strata.from_numpy(nc, backend=ad_stack), torch.from_numpy(nc.copy()))


def test_dlpack_roundtrip(ad_stack):
    x = strata.tensor([[1.0, 2.0, 3.0]], backend=ad_stack)
    t = torch.from_dlpack(x)
    assert t.tolist() == [[1.0, 2.0, 3.0]] and t.dtype == torch.float32
    back = strata.from_dlpack(torch.arange(4, dtype=torch.int64), backend=ad_stack)
    assert back.tolist() == [0, 1, 2, 3] and back.dtype is strata.int64
    n = np.from_dlpack(x.detach())
    assert n.tolist() == [[1.0, 2.0, 3.0]]


def test_to_backend(ad_stack):
    other = strata.backend("NumPy()")
    x = strata.tensor([1.0, 2.0], backend=ad_stack)
    y = x.to(other)
    assert y.backend == other and y.tolist() == [1.0, 2.0]
    z = y.to(str(ad_stack))
    assert z.backend == ad_stack
    w = x.to(other, strata.float64)
    assert w.dtype is strata.float64 and w.backend == other


def test_requires_grad_on_int_is_an_error(ad_stack):
    with pytest.raises(RuntimeError, match="floating"):
        strata.tensor([1, 2], backend=ad_stack, requires_grad=True)
