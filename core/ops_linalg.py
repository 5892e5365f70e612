"""matmul and friends; einsum lowered to permute/reshape/matmul/sum."""
from __future__ import annotations

from . import dtype as dt
from .errors import ShapeError
from .shape import broadcast_shapes
from .tensor import Tensor, _as_tensor_like

_make = Tensor._make


def _promote_pair(a: Tensor, b: Tensor, op: str):
    from .ops_elementwise import _backend_of
    B = _backend_of(a, b)
    d = dt.promote_types(a.dtype, b.dtype)
    if d is dt.bool_:
        raise ShapeError(f"{op}: bool tensors cannot be multiplied; cast with .float() first")
    return B, a._cast(d), b._cast(d)


def matmul(a: Tensor, b) -> Tensor:
    if not isinstance(b, Tensor):
        b = _as_tensor_like(b, a)
    B, a, b = _promote_pair(a, b, "matmul")
    sa, sb = tuple(a.shape), tuple(b.shape)
    if not sa or not sb:
        raise ShapeError(f"matmul: both arguments need at least 1 dim, got {sa} @ {sb}")
    ka = sa[-1]
    kb = sb[-2] if len(sb) > 1 else sb[0]
    if ka != kb:
        raise ShapeError(f"matmul: {sa} @ {sb}: inner dimensions {ka} and {kb} differ")
    pa, pb = a._p, b._p
    va, vb = len(sa) == 1, len(sb) == 1
    if va:
        sa = (1,) + sa
        pa = B.reshape(pa, sa)
    if vb:
        sb = sb + (1,)
        pb = B.reshape(pb, sb)
    try:
        batch = broadcast_shapes(sa[:-2], sb[:-2], "matmul")
    except ShapeError:
        raise ShapeError(f"matmul: {tuple(a.shape)} @ {tuple(b.shape)}: batch dimensions "
                         f"{sa[:-2]} and {sb[:-2]} do not broadcast") from None
    nd = len(batch) + 2
    if len(sa) < nd:
        sa = (1,) * (nd - len(sa)) + sa
        pa = B.reshape(pa, sa)
    if len(sb) < nd:
        sb = (1,) * (nd - len(sb)) + sb
        pb = B.reshape(pb, sb)
    out = B.matmul(pa, pb)
    shp = batch + ((sa[-2],) if not va else ()) + ((sb[-1],) if not vb else ())
    if tuple(B.shape(out)) != shp:
        out = B.reshape(out, shp)
    return _make(out, B)


def mm(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"mm: expects 2-D tensors, got {tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ShapeError(f"bmm: expects 3-D tensors with the same batch size, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def dot(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"dot: expects 1-D tensors, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] != b.shape[0]:
        raise ShapeError(f"dot: sizes {a.shape[0]} and {b.shape[0]} differ")
    return matmul(a, b)


inner = vdot = dot


def mv(a: Tensor, v: Tensor) -> Tensor:
    if a.ndim != 2 or v.ndim != 1:
        raise ShapeError(f"mv: expects a matrix and a vector, got {tuple(a.shape)} and {tuple(v.shape)}")
    return matmul(a, v)


def outer(a: Tensor, b: Tensor) -> Tensor:
    from .ops_movement import reshape
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"outer: expects 1-D tensors, got {tuple(a.shape)} and {tuple(b.shape)}")
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


ger = outer


def addmm(input, m1, m2, *, beta=1, alpha=1):
    out = matmul(m1, m2)
    if alpha != 1:
        out = out * alpha
    return out + (input if beta == 1 else input * beta)


def einsum(equation: str, *operands) -> Tensor:
    """torch.einsum: explicit ('ij,jk->ik') and implicit forms, '...' broadcasting, traces."""
    from .ops_movement import permute, reshape, diagonal
    from .ops_reduce import sum as _sum
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, out = eq.split("->")
    else:
        lhs, out = eq, None
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: equation has {len(terms)} operands, {len(operands)} were given")
    # expand '...' into fresh upper-case letters
    ell_dims = 0
    for t, x in zip(terms, operands):
        if "..." in t:
            ell_dims = max(ell_dims, x.ndim - (len(t) - 3))
    ell = "".join(chr(ord("A") + i) for i in range(ell_dims))
    new_terms = []
    for t, x in zip(terms, operands):
        if "..." in t:
            k = x.ndim - (len(t) - 3)
            t = t.replace("...", ell[ell_dims - k:])
        if len(t) != x.ndim:
            raise ShapeError(f"einsum: term '{t}' has {len(t)} subscripts but the operand has "
                             f"{x.ndim} dims (shape {tuple(x.shape)})")
        new_terms.append(t)
    if out is None:
        counts = {}
        for t in new_terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    sizes = {}
    ops = []
    for t, x in zip(new_terms, operands):
        # repeated letters inside one term: take the diagonal
        while len(set(t)) != len(t):
            c = next(c for c in t if t.count(c) > 1)
            i = t.index(c)
            j = t.index(c, i + 1)
            x = diagonal(x, 0, i, j)
            t = t[:i] + t[i + 1:j] + t[j + 1:] + c
        for c, s in zip(t, x.shape):
            if c in sizes and sizes[c] != s and s != 1 and sizes[c] != 1:
                raise ShapeError(f"einsum: subscript '{c}' has sizes {sizes[c]} and {s}")
            sizes[c] = max(sizes.get(c, 1), s)
        ops.append((t, x))

    def needed_after(k):
        s = set(out)
        for t, _ in ops[k + 1:]:
            s |= set(t)
        return s

    # sum out letters that only one operand uses and nobody needs
    t0, x0 = ops[0]
    for k in range(1, len(ops)):
        t1, x1 = ops[k]
        keep = needed_after(k)
        t0, x0 = _reduce_unused(t0, x0, keep | set(t1))
        t1, x1 = _reduce_unused(t1, x1, keep | set(t0))
        t0, x0 = _contract(t0, x0, t1, x1, keep, sizes)
    t0, x0 = _reduce_unused(t0, x0, set(out))
    return permute(x0, tuple(t0.index(c) for c in out)) if t0 != out else x0


def _reduce_unused(t, x, keep):
    from .ops_reduce import sum as _sum
    drop = tuple(i for i, c in enumerate(t) if c not in keep)
    if drop:
        x = _sum(x, drop)
        t = "".join(c for c in t if c in keep)
    return t, x


def _contract(ta, a, tb, b, keep, sizes):
    """Two operands -> one via a batched matmul over (batch, a-only, b-only, contracted)."""
    from .ops_movement import permute, reshape, expand
    batch = [c for c in ta if c in tb and c in keep]
    contr = [c for c in ta if c in tb and c not in keep]
    a_only = [c for c in ta if c not in tb]
    b_only = [c for c in tb if c not in ta]
    a = permute(a, tuple(ta.index(c) for c in batch + a_only + contr))
    b = permute(b, tuple(tb.index(c) for c in batch + contr + b_only))
    bs = [sizes[c] for c in batch]
    a = expand(a, bs + [sizes[c] for c in a_only + contr])
    b = expand(b, bs + [sizes[c] for c in contr + b_only])
    na = 1
    for c in a_only:
        na *= sizes[c]
    nc = 1
    for c in contr:
        nc *= sizes[c]
    nb = 1
    for c in b_only:
        nb *= sizes[c]
    r = matmul(reshape(a, bs + [na, nc]), reshape(b, bs + [nc, nb]))
    r = reshape(r, bs + [sizes[c] for c in a_only] + [sizes[c] for c in b_only])
    return "".join(batch + a_only + b_only), r
