"""QuantScheme: how values become integers (dtype, symmetry, granularity, calibration)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ...core.errors import StrataError


class QuantSchemeError(StrataError, ValueError):
    """A quantization option that makes no sense; the message says which and what would."""


class QuantScheme(BaseModel):
    """int8 or int4 (two values packed per byte); symmetric (zero point 0) or affine; one scale
    per tensor, per channel (`axis`) or per block of `block_size` values along each channel;
    ranges from min/max or from the `percentile` of |values| (clips rare outliers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dtype: Literal["int8", "int4"] = "int8"
    symmetric: bool = True
    granularity: Literal["per_tensor", "per_channel", "per_block"] = "per_channel"
    axis: int = 0
    block_size: int = 64
    calibration: Literal["minmax", "percentile"] = "minmax"
    percentile: float = 99.99

    @model_validator(mode="after")
    def _check(self):
        if self.block_size < 2 or self.block_size % 2:
            raise ValueError(f"block_size must be an even number >= 2, got {self.block_size}")
        if not 50.0 < self.percentile <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {self.percentile}")
        return self

    @classmethod
    def build(cls, scheme=None, **kwargs) -> "QuantScheme":
        if scheme is None:
            base = {}
        elif isinstance(scheme, QuantScheme):
            base = scheme.model_dump()
        elif isinstance(scheme, dict):
            base = dict(scheme)
        elif isinstance(scheme, str):
            base = {"dtype": scheme}
        else:
            raise QuantSchemeError(f"a quantization scheme is a QuantScheme, a dict or a dtype "
                                   f"name ('int8', 'int4'), got {type(scheme).__name__}")
        base.update(kwargs)
        try:
            return cls(**base)
        except ValidationError as e:
            probs = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'scheme'}: {err['msg']}"
                              for err in e.errors())
            raise QuantSchemeError(f"QuantScheme: invalid option(s): {probs} (options: "
                                   f"{', '.join(cls.model_fields)})") from None

    # ------------------------------------------------------------------ integer ranges
    @property
    def bits(self) -> int:
        return 8 if self.dtype == "int8" else 4

    @property
    def qmin(self) -> int:
        # symmetric ranges drop the most negative code so that -x quantizes to -q
        return -(1 << (self.bits - 1)) + (1 if self.symmetric else 0)

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def kwargs_repr(self) -> str:
        out = []
        for name, field in type(self).model_fields.items():
            v = getattr(self, name)
            if v != field.default:
                out.append(f"{name}={v!r}")
        return ", ".join(out)


__all__ = ["QuantScheme", "QuantSchemeError"]
