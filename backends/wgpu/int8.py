"""int8_matmul on WGPU with WGSL's dot4I8Packed: both operands' codes are packed four to a
u32 (int8_pack.wgsl), then one invocation per output sums packed dot products
(int8_dot4.wgsl). Where the adapter's compiler rejects dot4I8Packed the protocol's
composition runs (cast to int32, matmul); `int8_dot4` says which one this backend has."""
from __future__ import annotations

from ...core import dtype as dt
from ...core.backend import Backend
from ...core.errors import BackendError
from .dtypes import WTYPES
from .ops_nn import _pack, _words
from .tensor import new_tensor

# code storage the pack kernel reads (float16, uint8 and bool codes take the composition)
_CODE_STORES = ("f32", "i32")


class Int8Ops:
    """Mixin of the WGPU backend: int8_matmul."""

    @property
    def int8_dot4(self) -> bool:
        """Whether int8_matmul runs on dot4I8Packed here (compiled once to find out)."""
        rt = self.rt
        ok = rt.int8_dot4
        if ok is None:
            try:
                self._dot4_pipeline()
                ok = True
            except BackendError:
                ok = False
            rt.int8_dot4 = ok
        return ok

    def _dot4_pipeline(self):
        rt = self.rt
        return rt.pipeline(("int8_dot4",), lambda: rt.render("int8_dot4"), "rwrr")

    def _pack_codes(self, x, rows: int, k: int, row_stride: int, k_stride: int):
        rt = self.rt
        store = WTYPES[x.dtype].store
        pipe = rt.pipeline(("int8_pack", store), lambda: rt.render("int8_pack", T=store), "rwr")
        k4 = -(-k // 4)
        out = new_tensor(rt, (rows, k4), dt.int32)
        words = rows * k4
        groups = -(-words // 64)
        gx = min(groups, rt.max_groups)
        rt.dispatch(pipe, _pack(_words(rows, k, k4, x.layout.offset, row_stride, k_stride)),
                    [out.st.buf, x.st.buf], (gx, -(-groups // gx), 1), keep=[out.st, x.st])
        return out, k4

    def int8_matmul(self, a, b):
        sa, sb = a.shape, b.shape
        if (len(sa) != 2 or len(sb) != 2 or sa[1] != sb[0] or 0 in sa or 0 in sb
                or WTYPES[a.dtype].store not in _CODE_STORES
                or WTYPES[b.dtype].store not in _CODE_STORES
                or max(-(-sa[0] // 32), -(-sb[1] // 32)) > self.rt.max_groups
                or not self.int8_dot4):
            return Backend.int8_matmul(self, a, b)
        n, k = sa
        m = sb[1]
        pa, k4 = self._pack_codes(a, n, k, a.layout.strides[0], a.layout.strides[1])
        pb, _ = self._pack_codes(b, m, k, b.layout.strides[1], b.layout.strides[0])
        out = new_tensor(self.rt, (n, m), dt.int32)
        self.rt.dispatch(self._dot4_pipeline(), _pack(_words(n, m, k4)),
                         [out.st.buf, pa.st.buf, pb.st.buf], (-(-m // 32), -(-n // 32), 1),
                         keep=[out.st, pa.st, pb.st])
        return out
