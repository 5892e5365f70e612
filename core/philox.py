"""Philox4x32-10, the counter-based generator every backend uses for random numbers.

The stream is defined per element so that any launch configuration gives the same numbers:
element i of a request with (seed, offset) takes counter c = offset + i
(words c0 = c & 0xffffffff, c1 = c >> 32, c2 = c3 = 0) and key
(k0 = seed & 0xffffffff, k1 = (seed >> 32) & 0xffffffff), runs 10 Philox rounds, and uses
  uniform  float32/float16:  (x0 >> 8) * 2**-24                           in [0, 1)
                             (float16 clamps to 0.99951171875, the largest half below 1,
                             because rounding the float32 value could give 1.0)
  uniform  float64:          ((x0 >> 5) * 2**26 + (x1 >> 6)) * 2**-53    in [0, 1)
  normal:                    sqrt(-2 ln(1 - u0)) * cos(2 pi u1),  u0, u1 from x0, x1 as above
                             (float32 uses the 24-bit u, float64 the 53-bit u from (x0,x1),(x2,x3))
Device backends port `philox_words` to their kernel language; this NumPy version is the reference.
"""
from __future__ import annotations

import numpy as np

M0 = np.uint64(0xD2511F53)
M1 = np.uint64(0xCD9E8D57)
W0 = 0x9E3779B9
W1 = 0xBB67AE85
MASK = np.uint64(0xFFFFFFFF)


def philox_words(seed: int, offset: int, n: int):
    """The four uint32 output words (x0, x1, x2, x3) for elements 0..n-1."""
    c = np.arange(n, dtype=np.uint64) + np.uint64(offset)
    c0 = c & MASK
    c1 = c >> np.uint64(32)
    c2 = np.zeros(n, np.uint64)
    c3 = np.zeros(n, np.uint64)
    k0 = seed & 0xFFFFFFFF
    k1 = (seed >> 32) & 0xFFFFFFFF
    for _ in range(10):
        p0 = c0 * M0
        p1 = c2 * M1
        hi0, lo0 = p0 >> np.uint64(32), p0 & MASK
        hi1, lo1 = p1 >> np.uint64(32), p1 & MASK
        c0, c1, c2, c3 = (hi1 ^ c1 ^ np.uint64(k0)), lo1, (hi0 ^ c3 ^ np.uint64(k1)), lo0
        k0 = (k0 + W0) & 0xFFFFFFFF
        k1 = (k1 + W1) & 0xFFFFFFFF
    return c0.astype(np.uint32), c1.astype(np.uint32), c2.astype(np.uint32), c3.astype(np.uint32)


def _u24(x):
    return (x >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)


def _u53(hi, lo):
    return ((hi >> np.uint32(5)).astype(np.float64) * 67108864.0
            + (lo >> np.uint32(6)).astype(np.float64)) * (2.0 ** -53)


def uniform(seed: int, offset: int, n: int, double: bool = False) -> np.ndarray:
    """n uniforms in [0, 1): float32 (24-bit) or float64 (53-bit)."""
    x0, x1, _, _ = philox_words(seed, offset, n)
    return _u53(x0, x1) if double else _u24(x0)


def normal(seed: int, offset: int, n: int, double: bool = False) -> np.ndarray:
    """n standard normals by Box-Muller; float32 math for float32, float64 for float64."""
    x0, x1, x2, x3 = philox_words(seed, offset, n)
    if double:
        u0, u1 = _u53(x0, x1), _u53(x2, x3)
        return np.sqrt(-2.0 * np.log1p(-u0)) * np.cos(2.0 * np.pi * u1)
    u0, u1 = _u24(x0), _u24(x1)
    r = np.sqrt(np.float32(-2.0) * np.log(np.float32(1.0) - u0))
    return (r * np.cos(np.float32(2.0 * np.pi) * u1)).astype(np.float32)
