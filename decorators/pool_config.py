"""PoolConfig: how PoolAllocator rounds sizes into classes and how much it may keep.

Size classes decide how often a freed buffer can serve a later request: exact sizes never
waste a byte but rarely match; powers of two always match after warm-up but waste up to half.
The default ("octave") uses powers of two below `small_limit` (small buffers are cheap to
waste) and `octave_divisions` equal steps per power of two above it, so a large buffer wastes
at most 1/octave_divisions of its size.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ..core.errors import StrataError


class PoolConfigError(StrataError, ValueError):
    """A PoolAllocator option that makes no sense; the message says which and what would."""


def _pow2(v: int) -> bool:
    return v > 0 and v & (v - 1) == 0


class PoolConfig(BaseModel):
    """Options of PoolAllocator; every field can also be given as a keyword argument:
    `PoolAllocator(NumPy(), max_bytes=256 << 20)`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    #: bytes the pool may hold (in use + cached). When a new buffer would pass the cap,
    #: cached buffers are released first. None: no cap.
    max_bytes: int | None = None
    #: when True, a request that cannot fit under max_bytes even after releasing every
    #: cached buffer raises MemoryError; when False it is served anyway (the cap bounds caching)
    strict: bool = False
    #: size-class policy: "octave" (powers of two below small_limit, octave_divisions steps per
    #: power of two above), "pow2" (powers of two everywhere), "exact" (multiples of min_block)
    round_to: Literal["octave", "pow2", "exact"] = "octave"
    #: smallest block in bytes (a power of two); also the granularity of "exact"
    min_block: int = 512
    #: requests up to this many bytes use power-of-two classes under "octave"
    small_limit: int = 1 << 20
    #: steps per power of two above small_limit under "octave" (a power of two, 1..64)
    octave_divisions: int = 8
    #: NumPy/CuPy only: requests below this many bytes go to the array library's own allocator
    #: (counted as `bypassed`). malloc reuses small blocks in well under a microsecond, less
    #: than a Python-level pool costs per request, so pooling them only slows a step down.
    #: 0 pools every request. None (the default): NumPy's mmap threshold when strata's malloc
    #: tuning is on (32 MiB: malloc then reuses everything smaller without page faults, and its
    #: LIFO reuse hands back memory still in the CPU caches, which a pool's blocks are not:
    #: pooling the MLP step's 400 KB gradients made it 3-5% slower), else 64 KiB.
    #: Device pools (WGPU, OpenCL) pool every request regardless.
    host_min_bytes: int | None = None

    @field_validator("max_bytes")
    @classmethod
    def _cap(cls, v):
        if v is not None and v <= 0:
            raise ValueError(f"max_bytes must be a positive number of bytes or None (no cap), got {v}")
        return v

    @field_validator("min_block")
    @classmethod
    def _min_block(cls, v):
        if not _pow2(v) or v > 1 << 20:
            raise ValueError(f"min_block must be a power of two between 1 and 1048576, got {v}")
        return v

    @field_validator("small_limit")
    @classmethod
    def _small(cls, v):
        if not _pow2(v):
            raise ValueError(f"small_limit must be a power of two (e.g. 1048576), got {v}")
        return v

    @field_validator("octave_divisions")
    @classmethod
    def _div(cls, v):
        if not _pow2(v) or v > 64:
            raise ValueError(f"octave_divisions must be a power of two from 1 to 64, got {v}")
        return v

    @field_validator("host_min_bytes")
    @classmethod
    def _host_min(cls, v):
        if v is not None and v < 0:
            raise ValueError(f"host_min_bytes must be 0 (pool everything) or a positive number "
                             f"of bytes, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if self.small_limit < self.min_block:
            raise ValueError(f"small_limit ({self.small_limit}) must be at least min_block "
                             f"({self.min_block})")
        return self

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, config=None, **kwargs) -> "PoolConfig":
        """A config from a PoolConfig, a dict or None, with keyword overrides."""
        if config is None:
            base = {}
        elif isinstance(config, PoolConfig):
            base = config.model_dump()
        elif isinstance(config, dict):
            base = dict(config)
        else:
            raise PoolConfigError(f"PoolAllocator(config=...) takes a PoolConfig or a dict, got "
                                  f"{type(config).__name__}")
        base.update(kwargs)
        try:
            return cls(**base)
        except ValidationError as e:
            probs = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
                              for err in e.errors())
            fields = ", ".join(cls.model_fields)
            raise PoolConfigError(f"PoolAllocator: invalid option(s): {probs} (options: {fields})") \
                from None

    def kwargs_repr(self) -> str:
        """The options that differ from the defaults, as `k=v` in backend-string syntax."""
        out = []
        for name, field in type(self).model_fields.items():
            v = getattr(self, name)
            if v != field.default:
                out.append(f"{name}={v!r}")
        return ", ".join(out)

    # ------------------------------------------------------------------ size classes
    def size_class(self, nbytes: int) -> int:
        """The block size that serves a request of nbytes."""
        mb = self.min_block
        if nbytes <= mb:
            return mb
        if self.round_to == "exact":
            return (nbytes + mb - 1) & ~(mb - 1)
        p = 1 << (nbytes - 1).bit_length()  # next power of two >= nbytes
        if self.round_to == "pow2" or nbytes <= self.small_limit:
            return p
        step = max((p >> 1) // self.octave_divisions, mb)
        return (nbytes + step - 1) // step * step


__all__ = ["PoolConfig", "PoolConfigError"]
