"""Conformance cases: movement (views, cat/stack/split, pad) and indexing."""
from __future__ import annotations

import numpy as np

from .spec import ALL, NUMERIC, Arg, Case, sample

R = (3, 4, 5)


def mov(name, run, ref, shape=R, dtypes=ALL, grad=True):
    return Case(name, run, ref, (Arg(shape),), dtypes=dtypes, grad=grad, group="movement")


def _x(rng, d, shape=R):
    return sample(rng, shape, "any", d)


def _idx(rng, high, shape):
    return rng.integers(0, high, shape).astype(np.int64)


def _scatter_add_ref(x, idx, src, axis):
    out = x.copy()
    for pos in np.ndindex(*idx.shape):
        tgt = list(pos)
        tgt[axis] = idx[pos]
        out[tuple(tgt)] += src[pos]
    return out


def _scatter_ref(x, idx, src, axis):
    out = x.copy()
    for pos in np.ndindex(*idx.shape):
        tgt = list(pos)
        tgt[axis] = idx[pos]
        out[tuple(tgt)] = src[pos]
    return out


def _unique_idx(rng, n_axis, shape, axis):
    """Indices distinct along `axis` (scatter without add is then deterministic)."""
    keys = rng.random(shape[:axis] + (n_axis,) + shape[axis + 1:])
    perm = np.argsort(keys, axis=axis)
    sl = [slice(None)] * len(shape)
    sl[axis] = slice(0, shape[axis])
    return perm[tuple(sl)].astype(np.int64)


def _pad_replicate(x):
    return np.pad(x, ((0, 0), (2, 1), (1, 2)), mode="edge")


def _tri(rng, d):
    return [_x(rng, d, (2, 4, 5))]


MOVEMENT = [
    mov("reshape", lambda st, F, x: x.reshape(12, 5), lambda x: x.reshape(12, 5)),
    mov("view(-1)", lambda st, F, x: x.view(-1), lambda x: x.reshape(-1)),
    mov("reshape(transposed)", lambda st, F, x: x.transpose(0, 2).reshape(5, 12),
        lambda x: x.transpose(2, 1, 0).reshape(5, 12)),
    mov("flatten(1)", lambda st, F, x: x.flatten(1), lambda x: x.reshape(3, 20)),
    mov("unflatten", lambda st, F, x: x.unflatten(2, (5, 1)), lambda x: x.reshape(3, 4, 5, 1)),
    mov("squeeze(1)", lambda st, F, x: x.squeeze(1), lambda x: x.reshape(3, 4), shape=(3, 1, 4)),
    mov("squeeze()", lambda st, F, x: x.squeeze(), lambda x: x.reshape(3, 4),
        shape=(1, 3, 1, 4)),
    mov("unsqueeze(-1)", lambda st, F, x: x.unsqueeze(-1), lambda x: x[..., None]),
    mov("permute", lambda st, F, x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1)),
    mov("transpose", lambda st, F, x: x.transpose(0, 2), lambda x: x.swapaxes(0, 2)),
    mov("T", lambda st, F, x: x.T, lambda x: x.T, shape=(3, 4)),
    mov("mT", lambda st, F, x: x.mT, lambda x: x.swapaxes(-1, -2)),
    mov("expand", lambda st, F, x: x.expand(2, 3, 4), lambda x: np.broadcast_to(x, (2, 3, 4)),
        shape=(3, 1)),
    mov("expand(-1)", lambda st, F, x: x.expand(-1, 4), lambda x: np.broadcast_to(x, (3, 4)),
        shape=(3, 1)),
    mov("broadcast_to", lambda st, F, x: st.broadcast_to(x, (2, 3, 4)),
        lambda x: np.broadcast_to(x, (2, 3, 4)), shape=(1, 4)),
    mov("repeat", lambda st, F, x: x.repeat(2, 1, 3), lambda x: np.tile(x, (2, 1, 3)),
        shape=(2, 3)),
    mov("tile", lambda st, F, x: x.tile((2,)), lambda x: np.tile(x, (1, 2)), shape=(2, 3)),
    mov("flip", lambda st, F, x: x.flip((0, 2)), lambda x: np.flip(x, (0, 2))),
    mov("roll", lambda st, F, x: x.roll(2, 1), lambda x: np.roll(x, 2, 1)),
    mov("roll(multi)", lambda st, F, x: x.roll((1, -2), (0, 2)),
        lambda x: np.roll(x, (1, -2), (0, 2))),
    mov("roll(flat)", lambda st, F, x: x.roll(3), lambda x: np.roll(x, 3)),
    mov("contiguous", lambda st, F, x: x.mT.contiguous(), lambda x: x.swapaxes(-1, -2)),
    mov("slice", lambda st, F, x: x[1:, ::2], lambda x: x[1:, ::2]),
    mov("slice(step,neg)", lambda st, F, x: x[..., -4::3], lambda x: x[..., -4::3]),
    mov("index(None,int)", lambda st, F, x: x[None, :, 1], lambda x: x[None, :, 1]),
    mov("index(int,-1)", lambda st, F, x: x[1, -1], lambda x: x[1, -1]),
    mov("narrow", lambda st, F, x: x.narrow(1, 1, 2), lambda x: x[:, 1:3]),
    mov("split", lambda st, F, x: x.split(2, dim=1)[1], lambda x: x[:, 2:4]),
    mov("split(sizes)", lambda st, F, x: x.split([1, 4], dim=-1)[1], lambda x: x[..., 1:]),
    mov("chunk", lambda st, F, x: x.chunk(3, dim=2)[2], lambda x: x[:, :, 4:]),
    mov("F.pad(constant)", lambda st, F, x: F.pad(x, (1, 2, 0, 1)),
        lambda x: np.pad(x, ((0, 0), (0, 1), (1, 2)))),
    mov("F.pad(constant,value)", lambda st, F, x: F.pad(x, (2, 0), value=3),
        lambda x: np.pad(x, ((0, 0), (0, 0), (2, 0)), constant_values=3), dtypes=NUMERIC),
    mov("F.pad(reflect)", lambda st, F, x: F.pad(x, (2, 1), mode="reflect"),
        lambda x: np.pad(x, ((0, 0), (0, 0), (2, 1)), mode="reflect"), dtypes=NUMERIC),
    mov("F.pad(replicate)", lambda st, F, x: F.pad(x, (1, 2, 2, 1), mode="replicate"),
        _pad_replicate, dtypes=NUMERIC),
    Case("cat", lambda st, F, a, b, c: st.cat([a, b, c], dim=1),
         lambda a, b, c: np.concatenate([a, b, c], 1),
         (Arg((2, 3, 2)), Arg((2, 1, 2)), Arg((2, 2, 2))), dtypes=ALL, group="movement"),
    Case("cat(dim=-1)", lambda st, F, a, b: st.cat((a, b), -1),
         lambda a, b: np.concatenate([a, b], -1), (Arg((2, 3)), Arg((2, 4))), dtypes=ALL,
         group="movement"),
    Case("stack", lambda st, F, a, b: st.stack([a, b], dim=-1), lambda a, b: np.stack([a, b], -1),
         (Arg((2, 3)), Arg((2, 3))), dtypes=ALL, group="movement"),
]


def _gather_in(rng, d):
    return [_x(rng, d), _idx(rng, 4, (3, 6, 5))]


def _scatter_add_in(rng, d):
    return [_x(rng, d), _idx(rng, 4, (3, 6, 5)), _x(rng, d, (3, 6, 5))]


def _scatter_in(rng, d):
    return [_x(rng, d), _unique_idx(rng, 4, (3, 2, 5), 1), _x(rng, d, (3, 2, 5))]


def _mask_in(rng, d):
    return [_x(rng, d), rng.random((3, 1, 5)) < 0.4]


def _int_index_in(rng, d):
    return [_x(rng, d), _idx(rng, 3, (5,))]


def _adv_index_in(rng, d):
    return [_x(rng, d), _idx(rng, 3, (2, 3)), _idx(rng, 5, (3,))]


def _bool_index_in(rng, d):
    m = rng.random((3, 4)) < 0.5
    m[0, 0] = True
    return [_x(rng, d), m]


def _idx_select_in(rng, d):
    return [_x(rng, d), _idx(rng, 4, (6,))]


def _set_slice(st, F, x, v):
    y = x.clone()
    y[1:, ::2] = v
    return y


def _set_slice_ref(x, v):
    y = x.copy()
    y[1:, ::2] = v
    return y


def _set_mask(st, F, x, m):
    y = x.clone()
    y[m] = 1
    return y


def _set_mask_ref(x, m):
    y = x.copy()
    y[np.broadcast_to(m, x.shape)] = 1
    return y


def _set_index(st, F, x, i):
    y = x.clone()
    y[i, 1] = 0
    return y


def _set_index_ref(x, i):
    y = x.copy()
    y[i, 1] = 0
    return y


def _idx_case(name, run, ref, make, dtypes=ALL, grad=True):
    return Case(name, run, ref, (), dtypes=dtypes, grad=grad, make=make, group="indexing")


INDEXING = [
    _idx_case("gather", lambda st, F, x, i: x.gather(1, i),
              lambda x, i: np.take_along_axis(x, i, 1), _gather_in),
    _idx_case("take_along_dim", lambda st, F, x, i: st.take_along_dim(x, i, dim=1),
              lambda x, i: np.take_along_axis(x, i, 1), _gather_in),
    _idx_case("scatter_add", lambda st, F, x, i, s: x.scatter_add(1, i, s),
              lambda x, i, s: _scatter_add_ref(x, i, s, 1), _scatter_add_in, dtypes=NUMERIC),
    _idx_case("scatter", lambda st, F, x, i, s: x.scatter(1, i, s),
              lambda x, i, s: _scatter_ref(x, i, s, 1), _scatter_in),
    _idx_case("index_select", lambda st, F, x, i: x.index_select(1, i),
              lambda x, i: np.take(x, i, 1), _idx_select_in),
    _idx_case("masked_fill", lambda st, F, x, m: x.masked_fill(m, 1),
              lambda x, m: np.where(m, 1, x), _mask_in),
    _idx_case("x[int tensor]", lambda st, F, x, i: x[i], lambda x, i: x[i], _int_index_in),
    _idx_case("x[:, int tensor]", lambda st, F, x, i: x[:, i], lambda x, i: x[:, i],
              _int_index_in),
    _idx_case("x[i, :, j] (advanced)", lambda st, F, x, i, j: x[i, :, j],
              lambda x, i, j: x[i, :, j], _adv_index_in),
    _idx_case("x[bool mask]", lambda st, F, x, m: x[m], lambda x, m: x[m], _bool_index_in),
    _idx_case("setitem(slice)", _set_slice, _set_slice_ref,
              lambda rng, d: [_x(rng, d), _x(rng, d, (5,))], grad=False),
    _idx_case("setitem(mask)", _set_mask, _set_mask_ref,
              lambda rng, d: [_x(rng, d), rng.random(R) < 0.4], grad=False),
    _idx_case("setitem(int tensor)", _set_index, _set_index_ref, _int_index_in, grad=False),
    _idx_case("tril", lambda st, F, x: x.tril(), lambda x: np.tril(x), _tri),
    _idx_case("triu(1)", lambda st, F, x: st.triu(x, 1), lambda x: np.triu(x, 1), _tri),
    _idx_case("tril(-1)", lambda st, F, x: x.tril(diagonal=-1), lambda x: np.tril(x, -1), _tri),
]

CASES = MOVEMENT + INDEXING
