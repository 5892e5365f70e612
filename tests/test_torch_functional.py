"""strata.functional activations, softmax family and normalisation against torch.nn.functional."""
from __future__ import annotations

import numpy as np
import pytest

from .torch_ref import rand, run_both

ACT = {
    "relu": lambda m, x: m.F.relu(x),
    "leaky_relu": lambda m, x: m.F.leaky_relu(x),
    "leaky_relu 0.2": lambda m, x: m.F.leaky_relu(x, negative_slope=0.2),
    "elu": lambda m, x: m.F.elu(x),
    "elu alpha": lambda m, x: m.F.elu(x, alpha=0.5),
    "selu": lambda m, x: m.F.selu(x),
    "gelu": lambda m, x: m.F.gelu(x),
    "gelu tanh": lambda m, x: m.F.gelu(x, approximate="tanh"),
    "silu": lambda m, x: m.F.silu(x),
    "mish": lambda m, x: m.F.mish(x),
    "softplus": lambda m, x: m.F.softplus(x),
    "softplus beta": lambda m, x: m.F.softplus(x, beta=2.0, threshold=5.0),
    "hardswish": lambda m, x: m.F.hardswish(x),
    "hardsigmoid": lambda m, x: m.F.hardsigmoid(x),
    "sigmoid": lambda m, x: m.F.sigmoid(x),
    "tanh": lambda m, x: m.F.tanh(x),
    "softmax": lambda m, x: m.F.softmax(x, dim=-1),
    "softmax dim0": lambda m, x: m.F.softmax(x, dim=0),
    "log_softmax": lambda m, x: m.F.log_softmax(x, dim=1),
    "log_softmax dim-2": lambda m, x: m.F.log_softmax(x, -2),
    "tensor softmax": lambda m, x: x.softmax(-1),
    "tensor log_softmax": lambda m, x: x.log_softmax(dim=0),
}


def _x(seed=50, shape=(4, 7), dtype="float64", scale=4.0):
    x = rand(np.random.default_rng(seed), shape, dtype, "nonzero") * scale
    # keep away from the kinks at 0 and +-3 where one-sided derivatives differ
    x = np.where(np.abs(np.abs(x) - 3.0) < 0.05, x + 0.1, x)
    return x.astype(dtype)


@pytest.mark.parametrize("name", sorted(ACT))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_activation(ad_stack, name, dtype):
    # torch's hardsigmoid backward uses a float32 1/6 even for float64 (error 3e-8 relative);
    # strata's gradient is the exact 1/6, so compare those at float32 tolerance
    loose = "float32" if name in ("hardsigmoid", "hardswish") else None
    run_both(ACT[name], [_x(dtype=dtype)], ad_stack, tol_dtype=loose)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softplus", "sigmoid", "gelu",
                                  "silu", "mish", "elu", "selu"])
def test_activation_extreme_values(ad_stack, name):
    """Stable formulations: no inf/NaN for large magnitudes, gradients included."""
    x = np.array([[-800.0, -50.0, -1.0, 0.5, 40.0, 700.0]])
    run_both(ACT[name], [x], ad_stack)
    run_both(ACT[name], [x.astype(np.float32) / 8], ad_stack)


@pytest.mark.parametrize("name", ["softmax", "relu", "gelu", "hardswish", "log_softmax"])
def test_activation_views_and_shapes(ad_stack, name):
    run_both(ACT[name], [_x(51, (3, 6))], ad_stack, layouts=["T"])
    run_both(ACT[name], [_x(52, (2, 1, 5))], ad_stack)
    run_both(ACT[name], [_x(53, (0, 5))], ad_stack, grad=False)


def test_softmax_with_infs(ad_stack):
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]])
    run_both(lambda m, t: m.F.softmax(t, -1), [x], ad_stack, grad=False)
    run_both(lambda m, t: m.F.log_softmax(t, -1), [x], ad_stack, grad=False)


def test_softmax_float16(ad_stack):
    x = _x(54, (3, 5), "float16", 1.0)
    run_both(lambda m, t: t.softmax(-1), [x], ad_stack, grad=False)


def test_layer_norm(ad_stack):
    rng = np.random.default_rng(55)
    x, w, b = rand(rng, (2, 3, 5)), rand(rng, (5,)), rand(rng, (5,))
    run_both(lambda m, t, ww, bb: m.F.layer_norm(t, (5,), ww, bb), [x, w, b], ad_stack)
    run_both(lambda m, t, ww, bb: m.F.layer_norm(t, (3, 5), eps=1e-3), [x, w, b], ad_stack)
