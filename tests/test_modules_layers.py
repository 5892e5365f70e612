"""Every layer against PyTorch 2.13 CPU: same weights (through state_dict) give the same outputs
and gradients, float64 tightly and float32 within 1e-5 relative."""
import numpy as np
import pytest

from ._torch_compare import compare_module, copy_torch_to_strata, st, tdtype, torch

from strata import modules as nn  # noqa: E402

tnn = torch.nn
DT = ["float64", "float32"]


def rnd(*shape, seed=0, dtype="float64"):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def pair(tcls, scls, *args, dtype="float64", **kw):
    torch.manual_seed(0)
    return tcls(*args, dtype=tdtype(dtype), **kw), scls(*args, dtype=dtype, **kw)


@pytest.mark.parametrize("dtype", DT)
def test_linear_and_bilinear(dtype):
    compare_module(*pair(tnn.Linear, nn.Linear, 5, 3, dtype=dtype), [rnd(4, 5, dtype=dtype)], dtype)
    compare_module(*pair(tnn.Linear, nn.Linear, 5, 3, bias=False, dtype=dtype), [rnd(2, 4, 5, dtype=dtype)], dtype)
    compare_module(*pair(tnn.Bilinear, nn.Bilinear, 3, 4, 2, dtype=dtype),
                   [rnd(5, 3, dtype=dtype), rnd(5, 4, seed=1, dtype=dtype)], dtype)


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=2),
                                dict(groups=2, padding=(1, 2), stride=(2, 1)), dict(padding="same", bias=False),
                                dict(padding="valid", dilation=(1, 2))])
def test_conv2d(dtype, kw):
    k = (3, 2) if kw.get("padding") == "same" else 3
    tm, sm = pair(tnn.Conv2d, nn.Conv2d, 4, 6, k, dtype=dtype, **kw)
    compare_module(tm, sm, [rnd(2, 4, 9, 8, dtype=dtype)], dtype)


@pytest.mark.parametrize("dtype", DT)
def test_conv1d(dtype):
    for kw in (dict(), dict(stride=2, padding=2, dilation=2), dict(padding="same", groups=3)):
        tm, sm = pair(tnn.Conv1d, nn.Conv1d, 3, 6, 4, dtype=dtype, **kw)
        compare_module(tm, sm, [rnd(2, 3, 11, dtype=dtype)], dtype)


@pytest.mark.parametrize("dtype", DT)
def test_conv_transpose2d(dtype):
    for kw in (dict(), dict(stride=2, padding=1, output_padding=1), dict(groups=2, dilation=2, stride=(1, 2))):
        tm, sm = pair(tnn.ConvTranspose2d, nn.ConvTranspose2d, 4, 6, 3, dtype=dtype, **kw)
        compare_module(tm, sm, [rnd(2, 4, 5, 6, dtype=dtype)], dtype)


@pytest.mark.parametrize("dtype", DT)
def test_pools(dtype):
    x2 = rnd(2, 3, 9, 8, dtype=dtype)
    x1 = rnd(2, 3, 11, dtype=dtype)
    cases = [
        (tnn.MaxPool2d(2), nn.MaxPool2d(2), x2),
        (tnn.MaxPool2d(3, 2, 1, ceil_mode=True), nn.MaxPool2d(3, 2, 1, ceil_mode=True), x2),
        (tnn.MaxPool2d(2, dilation=2), nn.MaxPool2d(2, dilation=2), x2),
        (tnn.AvgPool2d(3, 2, 1), nn.AvgPool2d(3, 2, 1), x2),
        (tnn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
         nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), x2),
        (tnn.AvgPool2d(2, divisor_override=3), nn.AvgPool2d(2, divisor_override=3), x2),
        (tnn.MaxPool1d(3, 2), nn.MaxPool1d(3, 2), x1),
        (tnn.AvgPool1d(4, 3, 2), nn.AvgPool1d(4, 3, 2), x1),
        (tnn.AdaptiveAvgPool2d((3, 4)), nn.AdaptiveAvgPool2d((3, 4)), x2),
        (tnn.AdaptiveAvgPool2d(4), nn.AdaptiveAvgPool2d(4), x2),
        (tnn.AdaptiveAvgPool2d((None, 5)), nn.AdaptiveAvgPool2d((None, 5)), x2),
        (tnn.AdaptiveMaxPool2d((4, 3)), nn.AdaptiveMaxPool2d((4, 3)), x2),
    ]
    for tm, sm, x in cases:
        compare_module(tm, sm, [x], dtype)


def test_max_pool_indices_match_torch():
    x = rnd(2, 3, 7, 6)
    to, ti = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    so, si = st.functional.max_pool2d(st.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(si.numpy(), ti.numpy())
    to, ti = torch.nn.functional.adaptive_max_pool2d(torch.tensor(x), (4, 4), return_indices=True)
    so, si = st.functional.adaptive_max_pool2d(st.tensor(x), (4, 4), return_indices=True)
    np.testing.assert_array_equal(si.numpy(), ti.numpy())


@pytest.mark.parametrize("dtype", DT)
def test_batchnorm_train_eval_running_stats(dtype):
    for tcls, scls, shape in ((tnn.BatchNorm2d, nn.BatchNorm2d, (4, 3, 5, 5)),
                              (tnn.BatchNorm1d, nn.BatchNorm1d, (6, 3)),
                              (tnn.BatchNorm1d, nn.BatchNorm1d, (4, 3, 7))):
        for mom in (0.1, None):
            tm, sm = pair(tcls, scls, 3, momentum=mom, dtype=dtype)
            with torch.no_grad():
                tm.weight.uniform_(0.5, 1.5)
                tm.bias.uniform_(-1, 1)
            compare_module(tm, sm, [rnd(*shape, seed=0, dtype=dtype) * 2 + 1], dtype)
            for step in (1, 2):
                tm(torch.tensor(rnd(*shape, seed=step, dtype=dtype)))
                sm(st.tensor(rnd(*shape, seed=step, dtype=dtype)))
            for k, v in tm.state_dict().items():
                np.testing.assert_allclose(sm.state_dict()[k].numpy(), v.numpy(), err_msg=k, rtol=1e-5)
            assert int(sm.num_batches_tracked.item()) == 3
            compare_module(tm, sm, [rnd(*shape, seed=9, dtype=dtype)], dtype, train=False)
    tm, sm = pair(tnn.BatchNorm2d, nn.BatchNorm2d, 3, affine=False, track_running_stats=False, dtype=dtype)
    compare_module(tm, sm, [rnd(2, 3, 4, 4, dtype=dtype)], dtype, train=False)


@pytest.mark.parametrize("dtype", DT)
def test_layer_group_rms_norm(dtype):
    compare_module(*pair(tnn.LayerNorm, nn.LayerNorm, (4, 5), dtype=dtype), [rnd(3, 4, 5, dtype=dtype)], dtype)
    compare_module(*pair(tnn.LayerNorm, nn.LayerNorm, 5, bias=False, dtype=dtype), [rnd(3, 5, dtype=dtype)], dtype)
    tm, sm = pair(tnn.GroupNorm, nn.GroupNorm, 2, 6, dtype=dtype)
    with torch.no_grad():
        tm.weight.uniform_(0.5, 1.5)
        tm.bias.uniform_(-1, 1)
    compare_module(tm, sm, [rnd(3, 6, 4, 2, dtype=dtype)], dtype)
    tm, sm = pair(tnn.RMSNorm, nn.RMSNorm, 5, dtype=dtype)
    with torch.no_grad():
        tm.weight.uniform_(0.5, 1.5)
    compare_module(tm, sm, [rnd(3, 5, dtype=dtype)], dtype)
    compare_module(*pair(tnn.RMSNorm, nn.RMSNorm, (2, 5), eps=1e-3, dtype=dtype), [rnd(3, 2, 5, dtype=dtype)], dtype)


@pytest.mark.parametrize("dtype", DT)
def test_embedding_padding_idx(dtype):
    tm, sm = pair(tnn.Embedding, nn.Embedding, 10, 4, padding_idx=2, dtype=dtype)
    idx = np.array([[1, 2, 3], [2, 9, 0]])
    compare_module(tm, sm, [idx], dtype)
    assert np.all(sm.weight.grad.numpy()[2] == 0)
    with pytest.raises(IndexError, match="out of range"):
        sm(st.tensor([10]))


@pytest.mark.parametrize("dtype", DT)
def test_activations(dtype):
    x = rnd(4, 6, dtype=dtype) * 3
    x[0, 0] = 0.0
    cases = [(tnn.ReLU(), nn.ReLU()), (tnn.LeakyReLU(0.2), nn.LeakyReLU(0.2)), (tnn.ELU(0.7), nn.ELU(0.7)),
             (tnn.SELU(), nn.SELU()), (tnn.GELU(), nn.GELU()), (tnn.GELU("tanh"), nn.GELU("tanh")),
             (tnn.SiLU(), nn.SiLU()), (tnn.Mish(), nn.Mish()), (tnn.Softplus(2.0, 5.0), nn.Softplus(2.0, 5.0)),
             (tnn.Hardswish(), nn.Hardswish()),
             (tnn.Sigmoid(), nn.Sigmoid()), (tnn.Tanh(), nn.Tanh()), (tnn.Softmax(dim=1), nn.Softmax(dim=1)),
             (tnn.LogSoftmax(dim=0), nn.LogSoftmax(dim=0)), (tnn.Identity(), nn.Identity())]
    for tm, sm in cases:
        compare_module(tm, sm, [x], dtype)
    # torch's hardsigmoid backward multiplies by the float32 constant 1.0f/6 even in float64
    compare_module(tnn.Hardsigmoid(), nn.Hardsigmoid(), [x], dtype, grad_rtol=1e-7)


def test_dropout_and_flatten():
    x = st.ones(200, 50, requires_grad=True)
    d = nn.Dropout(0.3)
    y = d(x)
    kept = y.detach().numpy() != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.7, rtol=1e-6)
    d.eval()
    assert np.array_equal(d(x).detach().numpy(), x.detach().numpy())
    x = rnd(2, 3, 4, 5)
    compare_module(tnn.Flatten(), nn.Flatten(), [x])
    compare_module(tnn.Flatten(0, 2), nn.Flatten(0, 2), [x])
    compare_module(tnn.Unflatten(1, (3, 1)), nn.Unflatten(1, (3, 1)), [x])


@pytest.mark.parametrize("dtype", DT)
def test_containers_small_cnn(dtype):
    def build(m, **kw):
        return m.Sequential(m.Conv2d(1, 4, 3, padding=1, **kw), m.BatchNorm2d(4, **kw), m.ReLU(), m.MaxPool2d(2),
                            m.Conv2d(4, 8, 3, **kw), m.ReLU(), m.Flatten(), m.Linear(8 * 2 * 2, 10, **kw))
    torch.manual_seed(1)
    tm = build(tnn, dtype=tdtype(dtype))
    sm = build(nn, dtype=dtype)
    compare_module(tm, sm, [rnd(3, 1, 8, 8, dtype=dtype)], dtype)


def test_default_init_distributions():
    st.manual_seed(0)
    lin = nn.Linear(400, 300)
    w = lin.weight.detach().numpy()
    bound = 1 / np.sqrt(400)
    assert abs(w).max() <= bound and abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.01 * bound
    conv = nn.Conv2d(8, 16, 3)
    cb = 1 / np.sqrt(8 * 9)
    assert abs(conv.weight.detach().numpy()).max() <= cb and abs(conv.bias.detach().numpy()).max() <= cb
    e = nn.Embedding(1000, 64)
    assert abs(e.weight.detach().numpy().std() - 1) < 0.02
    t = st.zeros(200, 300)
    nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert abs(t.numpy().std() - np.sqrt(2 / 200)) < 0.003
    nn.init.xavier_uniform_(t, gain=2.0)
    assert abs(t.numpy()).max() <= 2 * np.sqrt(6 / 500)
    nn.init.xavier_normal_(t)
    assert abs(t.numpy().std() - np.sqrt(2 / 500)) < 0.003
    nn.init.constant_(t, 0.5)
    assert np.all(t.numpy() == 0.5)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(torch.nn.init.calculate_gain("leaky_relu", 0.2))
    # the same seed gives the same weights
    st.manual_seed(3)
    a = nn.Linear(5, 5).weight.detach().numpy()
    st.manual_seed(3)
    assert np.array_equal(a, nn.Linear(5, 5).weight.detach().numpy())


def test_bad_inputs_are_clear_errors():
    with pytest.raises(st.ShapeError, match="channels"):
        nn.Conv2d(3, 4, 3)(st.zeros(1, 2, 5, 5))
    with pytest.raises(st.ShapeError, match="features"):
        nn.Linear(3, 4)(st.zeros(2, 5))
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(st.ShapeError, match="kernel"):
        nn.Conv2d(1, 1, 5)(st.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="more than 1 value"):
        nn.BatchNorm1d(3)(st.zeros(1, 3))
