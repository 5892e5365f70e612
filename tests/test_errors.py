"""Every bad input of issue 2 gives a clear error naming the problem and the fix."""
from __future__ import annotations

import os

import pytest

import strata
from strata.core import dtype as dt
from strata.core.errors import (AutodiffError, BackendError, BackendParseError, ShapeError,
                                 StrataError, UnsupportedError)


# ---------------------------------------------------------------- shapes
def test_matmul_inner_dimension_message(stack):
    a = strata.zeros(64, 10, backend=stack)
    b = strata.zeros(20, 5, backend=stack)
    with pytest.raises(ShapeError) as e:
        a @ b
    assert str(e.value) == "matmul: (64, 10) @ (20, 5): inner dimensions 10 and 20 differ"
    with pytest.raises(ValueError):  # ShapeError is a ValueError, as torch users expect
        strata.matmul(a, b)


def test_matmul_batch_mismatch_names_shapes(stack):
    with pytest.raises(ShapeError, match=r"\(2, 3, 4\).*\(3, 4, 5\)"):
        strata.zeros(2, 3, 4, backend=stack) @ strata.zeros(3, 4, 5, backend=stack)


def test_broadcast_mismatch_names_op_and_shapes(stack):
    with pytest.raises(ShapeError, match=r"(?s)add.*\(2, 3\).*\(4,\)"):
        strata.zeros(2, 3, backend=stack) + strata.zeros(4, backend=stack)
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(3, 2\)"):
        strata.zeros(2, 3, backend=stack) * strata.zeros(3, 2, backend=stack)


def test_reshape_and_view_errors(stack):
    x = strata.zeros(2, 3, backend=stack)
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ShapeError, match="-1"):
        x.reshape(-1, -1)
    with pytest.raises(ShapeError):
        x.expand(3, 3)


def test_cat_stack_errors(stack):
    a = strata.zeros(2, 3, backend=stack)
    b = strata.zeros(2, 4, backend=stack)
    with pytest.raises(ShapeError, match=r"cat.*\(2, 3\).*\(2, 4\)|cat.*\(2, 4\).*\(2, 3\)"):
        strata.cat([a, b], dim=0)
    with pytest.raises(ShapeError, match="stack"):
        strata.stack([a, b])
    with pytest.raises((ValueError, TypeError)):
        strata.cat([], dim=0)


def test_dim_out_of_range(stack):
    x = strata.zeros(2, 3, backend=stack)
    with pytest.raises(IndexError, match=r"dim 2.*\(expected -2\.\.1\)"):
        x.sum(dim=2)
    with pytest.raises(IndexError):
        x.transpose(0, 5)
    with pytest.raises(IndexError):
        x.softmax(dim=-3)


# ---------------------------------------------------------------- indices
def test_out_of_range_indices_are_index_errors(stack):
    x = strata.arange(12, backend=stack).reshape(3, 4)
    cases = [
        lambda: x[3], lambda: x[-4], lambda: x[0, 4], lambda: x[:, -5], lambda: x[1, 1, 1],
        lambda: x[strata.tensor([0, 5], backend=stack)],
        lambda: x[:, strata.tensor([-5], backend=stack)],
        lambda: x.gather(1, strata.tensor([[0], [4], [1]], backend=stack)),
        lambda: x.index_select(0, strata.tensor([3], backend=stack)),
        lambda: x.scatter_add(0, strata.tensor([[3, 0, 0, 0]], backend=stack),
                              strata.ones(1, 4, dtype=strata.int64, backend=stack)),
        lambda: x[strata.tensor([True, False], backend=stack)],
    ]
    for i, fn in enumerate(cases):
        with pytest.raises(IndexError) as e:
            fn()
        assert str(e.value), f"case {i}: empty message"


def test_setitem_index_out_of_range(stack):
    x = strata.zeros(3, backend=stack)
    with pytest.raises(IndexError):
        x[3] = 1.0


# ---------------------------------------------------------------- backends
def test_mixing_backends_names_both_stacks():
    a = strata.ones(2, backend=strata.backend("NumPy()"))
    b = strata.ones(2, backend=strata.backend("Autodiff(NumPy())"))
    for fn in (lambda: a + b, lambda: b * a, lambda: strata.cat([a, b]), lambda: a @ b,
               lambda: strata.where(a > 0, a, b)):
        with pytest.raises(BackendError) as e:
            fn()
        msg = str(e.value)
        assert "NumPy()" in msg and "Autodiff(NumPy())" in msg, msg


def _no_f64_backend():
    """A NumPy backend that declares float64 unsupported (like WGSL devices)."""
    from strata.backends import NumPy

    class NoF64(NumPy):
        def supports(self, d):
            return d is not dt.float64

        def __repr__(self):
            return "NoF64()"
    return NoF64()


def test_unsupported_dtype_names_backend_and_alternatives():
    B = _no_f64_backend()
    with pytest.raises(UnsupportedError) as e:
        strata.tensor([1.0, 2.0], dtype=strata.float64, backend=B)
    msg = str(e.value)
    assert "NoF64()" in msg and "float64" in msg and "float32" in msg, msg
    x = strata.tensor([1.0], backend=B)
    with pytest.raises(UnsupportedError, match="NoF64"):
        x.double()
    with pytest.raises(UnsupportedError, match="NoF64"):
        strata.zeros(2, dtype=strata.float64, backend=B)


def test_unsupported_dtype_on_real_stacks(stack):
    missing = [d for d in dt.ALL if not stack.supports(d)]
    if not missing:
        pytest.skip(f"{stack} supports every dtype")
    with pytest.raises(UnsupportedError) as e:
        strata.zeros(2, dtype=missing[0], backend=stack)
    assert str(stack) in str(e.value) and missing[0].name in str(e.value)


# ---------------------------------------------------------------- autograd
def test_requires_grad_without_autodiff_says_how_to_wrap():
    B = strata.backend("NumPy()")
    with pytest.raises(AutodiffError) as e:
        strata.tensor([1.0], backend=B, requires_grad=True)
    assert "Autodiff(NumPy())" in str(e.value)
    x = strata.tensor([1.0, 2.0], backend=B)
    with pytest.raises(AutodiffError, match=r"Autodiff\(NumPy\(\)\)"):
        x.requires_grad_()
    with pytest.raises((AutodiffError, RuntimeError), match="Autodiff"):
        x.sum().backward()


def test_backward_on_non_scalar_needs_gradient(ad_stack):
    x = strata.tensor([1.0, 2.0], backend=ad_stack, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar") as e:
        y.backward()
    assert "gradient" in str(e.value)
    y2 = x * 3
    y2.backward(strata.ones(2, backend=ad_stack))
    assert x.grad.tolist() == [3.0, 3.0]


def test_backward_without_requires_grad(ad_stack):
    x = strata.tensor([1.0, 2.0], backend=ad_stack)
    with pytest.raises(RuntimeError, match="require"):
        x.sum().backward()


def test_backward_twice_without_retain_graph(ad_stack):
    x = strata.tensor([1.0, 2.0], backend=ad_stack, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_requires_grad_on_integers(ad_stack):
    with pytest.raises(RuntimeError, match="floating"):
        strata.tensor([1, 2], backend=ad_stack).requires_grad_()


def test_numpy_of_tensor_requiring_grad(ad_stack):
    x = strata.tensor([1.0], backend=ad_stack, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()


def test_setitem_on_leaf_requiring_grad(ad_stack):
    x = strata.tensor([1.0, 2.0], backend=ad_stack, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad"):
        x[0] = 5.0


# ---------------------------------------------------------------- misc values
def test_item_of_many_elements():
    with pytest.raises((ValueError, RuntimeError), match="2 elements"):
        strata.tensor([1.0, 2.0]).item()


def test_bool_of_many_elements():
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(strata.tensor([1.0, 2.0]))


def test_unknown_dtype_name_lists_known():
    with pytest.raises(TypeError, match="float32"):
        strata.tensor([1.0], dtype="float8")


def test_ragged_nested_list():
    with pytest.raises((ValueError, TypeError)):
        strata.tensor([[1.0, 2.0], [3.0]])


# ---------------------------------------------------------------- backend strings
@pytest.mark.parametrize("spec,pattern", [
    ("Nope()", r"unknown backend 'Nope'.*NumPy"),
    ("Autodiff(Nope())", r"unknown backend 'Nope'"),
    ("NumPy(", r"position"),
    ("NumPy())", r"position"),
    ("Autodiff(NumPy()", r"position"),
    ("NumPy", r"position"),
    ("", r"position|empty"),
    ("NumPy() NumPy()", r"position"),
    ("numpy()", r"unknown backend 'numpy'"),
    ("NumPy(1 + 2)", r"position"),
])
def test_bad_backend_strings(spec, pattern):
    with pytest.raises(BackendParseError, match=pattern):
        strata.backend(spec)


@pytest.mark.parametrize("spec", [
    "__import__('os').system('touch {flag}')",
    "NumPy(x=__import__('os').system('touch {flag}'))",
    "eval('open(\"{flag}\", \"w\")')",
    "exec('open(\"{flag}\", \"w\")')",
    "NumPy(); open('{flag}', 'w')",
    "Autodiff(open('{flag}', 'w'))",
    "NumPy().__class__",
    "[x for x in ()]",
    "lambda: 0",
])
def test_backend_strings_never_execute_code(spec, tmp_path):
    flag = tmp_path / "pwned"
    with pytest.raises(StrataError):
        strata.backend(spec.format(flag=flag))
    assert not flag.exists()


def test_bad_backend_keyword_is_a_clear_error():
    with pytest.raises(BackendParseError, match="NumPy"):
        strata.backend("NumPy(bogus=1)")
    with pytest.raises(TypeError):
        strata.backend(42)


def test_bad_strata_backend_env(tmp_path):
    import subprocess
    import sys
    env = dict(os.environ, STRATA_BACKEND="Autodiff(Nope())")
    r = subprocess.run([sys.executable, "-c", "import strata; strata.zeros(1)"], env=env,
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode != 0 and "Nope" in r.stderr
