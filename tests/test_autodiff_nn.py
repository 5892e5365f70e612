"""Autodiff backward rules of matmul, softmax, layer_norm, convolution and pooling against
PyTorch autograd and central finite differences (float64, Autodiff(NumPy()))."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from strata.tests._autodiff_util import check

rng = np.random.default_rng(99)


def rn(*shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)),
                                   ((2, 1, 3, 4), (5, 4, 2)), ((1, 3, 4), (2, 4, 2))])
def test_matmul(sa, sb):
    check(lambda B, a, b: B.matmul(a, b), torch.matmul, [rn(*sa), rn(*sb)])


def test_matmul_one_side():
    check(lambda B, a, b: B.matmul(a, b), torch.matmul, [rn(3, 4), rn(2, 4, 5)],
          diff=[False, True])
    check(lambda B, a, b: B.matmul(a, b), torch.matmul, [rn(3, 4), rn(2, 4, 5)],
          diff=[True, False])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_softmax_log_softmax(axis):
    x = rn(2, 3, 4) * 2
    check(lambda B, x: B.softmax(x, axis), lambda x: torch.softmax(x, axis), [x])
    check(lambda B, x: B.log_softmax(x, axis), lambda x: torch.log_softmax(x, axis), [x])


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("nd", [1, 2])
def test_layer_norm(affine, nd):
    x = rn(2, 3, 4) * 1.5 + 0.3
    shape = (3, 4)[2 - nd:]
    if affine:
        w, b = rn(*shape), rn(*shape)
        check(lambda B, x, w, b: B.layer_norm(x, nd, w, b, 1e-5),
              lambda x, w, b: TF.layer_norm(x, shape, w, b, 1e-5), [x, w, b], rtol=1e-6)
    else:
        check(lambda B, x: B.layer_norm(x, nd, None, None, 1e-5),
              lambda x: TF.layer_norm(x, shape, None, None, 1e-5), [x], rtol=1e-6)


def test_layer_norm_weight_only_grad():
    x, w, b = rn(3, 5), rn(5), rn(5)
    check(lambda B, x, w, b: B.layer_norm(x, 1, w, b, 1e-5),
          lambda x, w, b: TF.layer_norm(x, (5,), w, b, 1e-5), [x, w, b],
          diff=[False, True, False], rtol=1e-6)


CONV = [  # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 5, 5), (4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1),
    ((1, 2, 6, 7), (3, 2, 3, 2), (2, 1), (1, 0), (1, 1), 1),
    ((1, 4, 7, 6), (4, 2, 3, 3), (2, 2), (1, 1), (1, 1), 2),
    ((2, 2, 7, 7), (2, 1, 2, 3), (1, 2), (0, 1), (2, 1), 2),
    ((1, 3, 8, 8), (2, 3, 3, 3), (3, 3), (2, 2), (2, 2), 1),
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV)
def test_conv2d(xs, ws, stride, padding, dilation, groups):
    check(lambda B, x, w: B.conv2d(x, w, stride, padding, dilation, groups),
          lambda x, w: TF.conv2d(x, w, None, stride, padding, dilation, groups),
          [rn(*xs), rn(*ws)], rtol=1e-6)


CONVT = [  # x shape, w shape (C, O/G, kh, kw), stride, padding, output_padding, dilation, groups
    ((2, 3, 4, 4), (3, 2, 3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1),
    ((1, 4, 3, 5), (4, 1, 3, 2), (2, 2), (1, 0), (1, 1), (1, 1), 2),
    ((1, 2, 4, 3), (2, 3, 2, 3), (2, 1), (0, 1), (0, 0), (2, 1), 1),
]


@pytest.mark.parametrize("xs,ws,stride,padding,op,dilation,groups", CONVT)
def test_conv_transpose2d(xs, ws, stride, padding, op, dilation, groups):
    check(lambda B, x, w: B.conv_transpose2d(x, w, stride, padding, op, dilation, groups),
          lambda x, w: TF.conv_transpose2d(x, w, None, stride, padding, op, groups, dilation),
          [rn(*xs), rn(*ws)], rtol=1e-6)


@pytest.mark.parametrize("k,s,p,d,ceil", [((2, 2), (2, 2), (0, 0), (1, 1), False),
                                          ((3, 3), (2, 2), (1, 1), (1, 1), True),
                                          ((2, 3), (1, 2), (1, 0), (2, 1), False)])
def test_max_pool2d(k, s, p, d, ceil):
    x = rng.permutation(2 * 3 * 7 * 7).reshape(2, 3, 7, 7) / 10.0  # distinct values: no ties
    check(lambda B, x: B.max_pool2d(x, k, s, p, d, ceil)[0],
          lambda x: TF.max_pool2d(x, k, s, p, d, ceil), [x])


@pytest.mark.parametrize("k,s,p,ceil,cip,div", [((2, 2), (2, 2), (0, 0), False, True, None),
                                                ((3, 3), (2, 2), (1, 1), True, True, None),
                                                ((3, 2), (2, 1), (1, 1), True, False, None),
                                                ((3, 3), (2, 3), (1, 0), False, True, 5),
                                                ((2, 2), (3, 3), (0, 0), True, False, None)])
def test_avg_pool2d(k, s, p, ceil, cip, div):
    check(lambda B, x: B.avg_pool2d(x, k, s, p, ceil, cip, div),
          lambda x: TF.avg_pool2d(x, k, s, p, ceil, cip, div), [rn(2, 2, 7, 8)])
