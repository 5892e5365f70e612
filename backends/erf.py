"""Vectorised erf accurate to float64 precision, for array namespaces without one (NumPy).

W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969),
as in his SPECFUN routine CALERF: three rational approximations on |x| <= 0.46875,
0.46875 < |x| <= 4 and |x| > 4, the latter two giving erfc(|x|) * exp(x^2), rescaled with
exp(-x^2) split into two factors so that the square does not lose bits. Each element is
evaluated only by the branch of its interval. Float16/float32 inputs are computed in float64
and rounded once, so their results are correctly rounded in practice.
"""
from __future__ import annotations

import math

_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_THRESH = 0.46875
_RSQRTPI = 1.0 / math.sqrt(math.pi)
# erfc(6) = 2.2e-17 is below half an ulp of 1.0, so erf is exactly +-1 from here on
_ONE_FROM = 6.0


def _small(xp, y):
    # erf(y) / y as a rational function of y^2
    z = y * y
    num = _A[4] * z
    den = z.copy()
    for i in range(3):
        num += _A[i]
        num *= z
        den += _B[i]
        den *= z
    num += _A[3]
    den += _B[3]
    return y * num / den


def _scaled_erfc(xp, y, mid: bool):
    # erfc(y) * exp(y^2)
    if mid:
        num = _C[8] * y
        den = y.copy()
        for i in range(7):
            num += _C[i]
            num *= y
            den += _D[i]
            den *= y
        num += _C[7]
        den += _D[7]
        return num / den
    z = 1.0 / (y * y)
    num = _P[5] * z
    den = z.copy()
    for i in range(4):
        num += _P[i]
        num *= z
        den += _Q[i]
        den *= z
    r = z * (num + _P[4]) / (den + _Q[4])
    return (_RSQRTPI - r) / y


def _one_minus_erfc(xp, y, mid: bool):
    r = _scaled_erfc(xp, y, mid)
    # exp(-y^2) = exp(-ysq^2) * exp(-(y - ysq)(y + ysq)) with ysq = y rounded down to 1/16:
    # ysq^2 is exact, so the large exponent carries no rounding error
    ysq = xp.trunc(y * 16.0) / 16.0
    d = (y - ysq) * (y + ysq)
    r *= xp.exp(-ysq * ysq) * xp.exp(-d)
    return (0.5 - r) + 0.5


def erf(x, xp):
    """erf of a floating array `x` of namespace `xp`; same shape and dtype as x."""
    out_dtype = x.dtype
    flat = xp.asarray(x, dtype=xp.float64).reshape(-1)
    y = xp.abs(flat)
    res = xp.empty_like(y)
    small = y <= _THRESH
    mid = (y > _THRESH) & (y <= 4.0)
    tail = (y > 4.0) & (y < _ONE_FROM)
    res[small] = _small(xp, y[small])
    res[mid] = _one_minus_erfc(xp, y[mid], True)
    res[tail] = _one_minus_erfc(xp, y[tail], False)
    res[y >= _ONE_FROM] = 1.0
    res[xp.isnan(y)] = xp.nan
    # erf is odd; copysign keeps erf(-0.0) = -0.0
    res = xp.copysign(res, flat)
    return res.reshape(x.shape).astype(out_dtype, copy=False)
