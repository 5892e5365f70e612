"""MLP training step (784-128-10, batch 128, Adam) on strata's WGPU stacks beside tinygrad's
jitted step on its WebGPU device, in one run: `python -m bench.tinygrad_compare`.

tinygrad is not a strata dependency: `pip install tinygrad==0.14.0 dawn-python==0.3.0`. It runs
in a subprocess because it reads DEV/WEBGPU_PATH/TRAINING at import. Rounds alternate between
the two so that both see the same machine load.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

_TINYGRAD = r'''
import time, numpy as np
from tinygrad import Tensor, TinyJit, nn
rng = np.random.default_rng(0)
X = Tensor(rng.random((128, 784), dtype=np.float32)); Y = Tensor(rng.integers(0, 10, 128).astype(np.int32))
class MLP:
    def __init__(self): self.l1, self.l2 = nn.Linear(784, 128), nn.Linear(128, 10)
    def __call__(self, x): return self.l2(self.l1(x).relu())
m = MLP(); opt = nn.optim.Adam(nn.state.get_parameters(m), lr=1e-3)
@TinyJit
def step():
    opt.zero_grad(); loss = m(X).sparse_categorical_crossentropy(Y); loss.backward(); opt.step()
    return loss.realize()
ts = []
for i in range(STEPS):
    t0 = time.perf_counter(); step().item(); ts.append(time.perf_counter() - t0)
print(float(np.median(ts[5:])))
'''


def tinygrad_step(steps: int = 20) -> float:
    import importlib.util
    spec = importlib.util.find_spec("pydawn")
    if spec is None or importlib.util.find_spec("tinygrad") is None:
        raise RuntimeError("install tinygrad==0.14.0 and dawn-python==0.3.0 to compare")
    lib = os.path.join(os.path.dirname(spec.origin), "lib", "libwebgpu_dawn_x86_64.so")
    env = dict(os.environ, DEV="WEBGPU", WEBGPU_PATH=lib, TRAINING="1")
    out = subprocess.run([sys.executable, "-c", _TINYGRAD.replace("STEPS", str(steps))], env=env,
                         capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(f"tinygrad failed: {out.stderr[-800:]}")
    return float(out.stdout.strip().splitlines()[-1])


def strata_step(spec: str, steps: int = 20) -> float:
    import strata as st
    rng = np.random.default_rng(0)
    x = rng.random((128, 784), dtype=np.float32)
    y = rng.integers(0, 10, 128)
    B = st.backend(spec)
    nn = st.modules
    st.manual_seed(0)
    m = nn.Sequential(nn.Linear(784, 128, backend=B), nn.ReLU(), nn.Linear(128, 10, backend=B))
    opt = st.optim.Adam(m.parameters(), lr=1e-3)
    sx, sy = st.from_numpy(x, backend=B), st.from_numpy(y, backend=B)
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = st.functional.cross_entropy(m(sx), sy)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()  # the step is done only when its value is back on the host
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts[5:]))


def main() -> None:
    stacks = sys.argv[1:] or ["Autodiff(WGPU())", "Fusion(Autodiff(WGPU()))", "Autodiff(Fusion(WGPU()))"]
    rows: dict = {}
    for _ in range(2):
        rows.setdefault("tinygrad (jit, WebGPU/Dawn)", []).append(tinygrad_step())
        for s in stacks:
            rows.setdefault(s, []).append(strata_step(s))
    ref = np.median(rows["tinygrad (jit, WebGPU/Dawn)"])
    print(f"MLP 784-128-10 step, batch 128, Adam; load average {os.getloadavg()[0]:.2f}")
    for name, v in rows.items():
        t = float(np.median(v))
        print(f"  {name:32s} {t * 1e3:8.1f} ms   {ref / t:5.2f}x faster than tinygrad")


if __name__ == "__main__":
    main()
