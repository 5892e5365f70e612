"""strata.save / strata.load: tensors, nested checkpoints, metadata, atomicity, corrupt files."""
import json
import os
import struct

import numpy as np
import pytest

import strata as st
from strata.serialization import SerializationError


def test_roundtrip_tensor_and_flat_dict(tmp_path):
    t = st.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=st.float64)
    st.save(t, tmp_path / "t.safetensors")
    back = st.load(tmp_path / "t.safetensors")
    assert back.dtype == st.float64 and back.tolist() == t.tolist()
    sd = {"b": st.arange(3), "a": st.ones(2, 2, dtype=st.float16), "m": st.tensor([True, False])}
    st.save(sd, tmp_path / "sd.safetensors")
    back = st.load(tmp_path / "sd.safetensors")
    assert list(back) == ["b", "a", "m"]
    assert back["a"].dtype == st.float16 and back["m"].dtype == st.bool and back["b"].tolist() == [0, 1, 2]


def test_nested_checkpoint_with_metadata(tmp_path):
    ck = {"model": {"w": st.randn(3, 2)}, "optimizer": {"state": {0: {"step": 3, "exp_avg": st.zeros(3, 2)}},
                                                          "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999),
                                                                            "params": [0]}]},
          "epoch": 4, "best": float("inf"), "name": "mlp", "none": None, "arr": np.arange(4, dtype=np.int32),
          "rng": {"seed": 2 ** 63 + 5, "offset": 10}}
    p = tmp_path / "ck.safetensors"
    st.save(ck, p)
    back = st.load(p)
    assert back["epoch"] == 4 and back["best"] == float("inf") and back["name"] == "mlp" and back["none"] is None
    assert back["optimizer"]["state"][0]["step"] == 3 and isinstance(back["optimizer"]["param_groups"][0]["betas"], tuple)
    assert np.array_equal(back["model"]["w"].numpy(), ck["model"]["w"].numpy())
    assert isinstance(back["arr"], np.ndarray) and back["arr"].dtype == np.int32
    assert back["rng"]["seed"] == 2 ** 63 + 5
    # the metadata header is plain JSON readable by safetensors itself
    from safetensors import safe_open
    with safe_open(str(p), "np") as f:
        meta = f.metadata()
        assert "strata.structure" in meta and "model/w" in f.keys()
    json.loads(meta["strata.structure"])


def test_atomic_write_leaves_no_temp_files_and_replaces(tmp_path):
    p = tmp_path / "x.safetensors"
    st.save({"a": st.ones(2)}, p)
    st.save({"a": st.zeros(2)}, p)
    assert st.load(p)["a"].tolist() == [0.0, 0.0]
    assert os.listdir(tmp_path) == ["x.safetensors"]


def test_unsaveable_objects_are_refused(tmp_path):
    with pytest.raises(SerializationError, match="no pickling"):
        st.save({"f": lambda: 1}, tmp_path / "f.safetensors")
    assert not (tmp_path / "f.safetensors").exists()


def test_corrupt_truncated_and_foreign_files(tmp_path):
    p = tmp_path / "ok.safetensors"
    st.save({"a": st.ones(100)}, p)
    raw = p.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(raw[:-50])
    with pytest.raises(SerializationError, match="truncated"):
        st.load(tmp_path / "trunc.safetensors")
    (tmp_path / "tiny").write_bytes(b"abc")
    with pytest.raises(SerializationError, match="not a safetensors"):
        st.load(tmp_path / "tiny")
    (tmp_path / "pickle.pt").write_bytes(b"\x80\x04\x95" + b"\x00" * 200)
    with pytest.raises(SerializationError, match="not a safetensors"):
        st.load(tmp_path / "pickle.pt")
    hdr = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (tmp_path / "badjson").write_bytes(struct.pack("<Q", len(hdr)) + hdr[:-1] + b"!" + b"\x00" * 8)
    with pytest.raises(SerializationError, match="not JSON"):
        st.load(tmp_path / "badjson")
    hdr = json.dumps({"a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    (tmp_path / "bf16").write_bytes(struct.pack("<Q", len(hdr)) + hdr + b"\x00" * 4)
    with pytest.raises(SerializationError, match="BF16"):
        st.load(tmp_path / "bf16")
    with pytest.raises(FileNotFoundError):
        st.load(tmp_path / "missing.safetensors")
