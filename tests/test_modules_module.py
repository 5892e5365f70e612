"""Module API: registration, traversal, state_dict/load_state_dict errors, modes, conversion, repr,
and state dicts exchanged with PyTorch through safetensors files in both directions."""
import numpy as np
import pytest

from ._torch_compare import copy_torch_to_strata, st, torch

from strata import modules as nn  # noqa: E402

tnn = torch.nn


def small(m, **kw):
    return m.Sequential(m.Conv2d(1, 4, 3, padding=1, **kw), m.BatchNorm2d(4, **kw), m.ReLU(), m.MaxPool2d(2),
                        m.Flatten(), m.Linear(4 * 3 * 3, 5, **kw))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
        self.heads = nn.ModuleList([nn.Linear(4, 2), nn.Linear(4, 1)])
        self.extra = nn.ModuleDict({"bn": nn.BatchNorm1d(4)})
        self.scale = nn.Parameter(st.ones(1))
        self.register_buffer("steps", st.zeros(1))
        self.register_buffer("cache", st.zeros(2), persistent=False)

    def forward(self, x):
        h = self.extra["bn"](self.body(x))
        return self.heads[0](h) * self.scale, self.heads[1](h)


def test_traversal_and_state_dict_keys():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "body.0.weight", "body.0.bias", "heads.0.weight", "heads.0.bias",
                     "heads.1.weight", "heads.1.bias", "extra.bn.weight", "extra.bn.bias"]
    assert [n for n, _ in net.named_buffers()] == ["steps", "cache", "extra.bn.running_mean",
                                                   "extra.bn.running_var", "extra.bn.num_batches_tracked"]
    sd = net.state_dict()
    assert "cache" not in sd and "steps" in sd and sd["extra.bn.num_batches_tracked"].dtype == st.int64
    assert [n for n, _ in net.named_children()] == ["body", "heads", "extra"]
    assert len(list(net.modules())) == 9
    assert isinstance(net.get_submodule("heads.1"), nn.Linear)
    # shared modules are visited once
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, lin)
    assert len(list(seq.parameters())) == 2


def test_load_state_dict_errors_and_non_strict():
    net = Net()
    sd = dict(net.state_dict())
    sd.pop("body.0.bias")
    sd["bogus.weight"] = st.zeros(1)
    sd["heads.1.weight"] = st.zeros(3, 4)
    with pytest.raises(nn.StateDictError) as e:
        net.load_state_dict(sd)
    msg = str(e.value)
    assert 'Missing key(s) in state_dict: "body.0.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "bogus.weight"' in msg
    assert "size mismatch for heads.1.weight" in msg and "(3, 4)" in msg and "(1, 4)" in msg
    with pytest.raises(nn.StateDictError, match="size mismatch"):
        net.load_state_dict(sd, strict=False)
    sd["heads.1.weight"] = st.full((1, 4), 2.0)
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["body.0.bias"] and res.unexpected_keys == ["bogus.weight"]
    assert np.all(net.heads[1].weight.detach().numpy() == 2.0)
    assert net.heads[1].weight.requires_grad and net.heads[1].weight.is_leaf


def test_modes_zero_grad_requires_grad_apply():
    net = Net()
    net.eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    out = net(st.randn(5, 3))
    (out[0].sum() + out[1].sum()).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and "BatchNorm1d" in seen
    with pytest.raises(TypeError, match="Parameter or None"):
        net.scale = st.ones(1)


def test_to_backend_and_dtype_keeps_parameter_identity():
    net = small(nn)
    p0 = next(net.parameters())
    opt = st.optim.SGD(net.parameters(), lr=0.1)
    net.to(dtype=st.float64)
    assert next(net.parameters()) is p0 and p0.dtype == st.float64 and p0.requires_grad
    assert net[1].num_batches_tracked.dtype == st.int64
    other = st.backend("Autodiff(NumPy())")
    net.to(other)
    assert p0._b == other
    x = st.randn(2, 1, 6, 6, dtype=st.float64)
    net(x).sum().backward()
    opt.step()


def test_repr_matches_torch():
    assert repr(small(nn)) == repr(small(tnn))
    assert repr(nn.Conv2d(2, 3, (3, 2), stride=2, padding="same" if False else 1, groups=1, bias=False)) == \
        repr(tnn.Conv2d(2, 3, (3, 2), stride=2, padding=1, bias=False))
    assert repr(nn.Embedding(5, 2, padding_idx=0)) == repr(tnn.Embedding(5, 2, padding_idx=0))
    assert repr(nn.LayerNorm(4)) == repr(tnn.LayerNorm(4))
    assert "Parameter containing" in repr(nn.Parameter(st.ones(2)))


def test_safetensors_interop_both_ways(tmp_path):
    from safetensors.torch import load_file, save_file
    torch.manual_seed(0)
    tm = small(tnn)
    with torch.no_grad():
        tm[1].running_mean.uniform_(-1, 1)
        tm[1].running_var.uniform_(0.5, 2)
    tm.eval()
    x = np.random.default_rng(0).standard_normal((3, 1, 6, 6)).astype(np.float32)
    # torch -> strata
    save_file(tm.state_dict(), tmp_path / "t.safetensors")
    sm = small(nn).eval()
    sm.load_state_dict(st.load(tmp_path / "t.safetensors"))
    np.testing.assert_allclose(sm(st.tensor(x)).detach().numpy(), tm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    # strata -> torch
    st.manual_seed(4)
    sm2 = small(nn).eval()
    st.save(sm2.state_dict(), tmp_path / "s.safetensors")
    tm2 = small(tnn).eval()
    tm2.load_state_dict(load_file(tmp_path / "s.safetensors"))
    np.testing.assert_allclose(tm2(torch.tensor(x)).detach().numpy(), sm2(st.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    loaded = st.load(tmp_path / "s.safetensors")
    assert list(loaded) == list(sm2.state_dict())   # key order kept


def test_copy_helper_checks_keys():
    torch.manual_seed(0)
    copy_torch_to_strata(tnn.BatchNorm1d(3), nn.BatchNorm1d(3))
