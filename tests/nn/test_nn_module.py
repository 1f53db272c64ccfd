"""Module: parameter discovery by attribute, state dicts, modes, repr."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.blocks = [nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2, bias=False)]
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.bn = nn.BatchNorm1d(2)
        self.not_a_parameter = cr.tensor([1.0, 2.0])  # a plain tensor is not registered

    def forward(self, x):
        h = self.fc1(x).relu()
        for block in self.blocks:
            h = block(h)
        return self.bn(h) * self.scale


def test_named_parameters_follow_assignment_order_with_dotted_names():
    names = [name for name, _ in Net().named_parameters()]
    assert names == [
        "fc1.weight", "fc1.bias", "blocks.0.weight", "blocks.0.bias", "blocks.2.weight",
        "scale", "bn.weight", "bn.bias",
    ]  # fmt: skip
    model = Net()
    assert [id(p) for p in model.parameters()] == [id(p) for _, p in model.named_parameters()]


def test_sequential_and_module_list_use_indices_as_names():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    holder = nn.Module()
    holder.layers = nn.ModuleList([nn.Linear(1, 1)]).append(nn.Linear(1, 2))
    holder.heads = {"a": nn.Linear(2, 1)}
    names = [n for n, _ in holder.named_parameters()]
    assert names == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
        "heads.a.weight", "heads.a.bias",
    ]  # fmt: skip
    assert len(model) == 3 and isinstance(model[1], nn.ReLU)
    assert isinstance(model[:2], nn.Sequential) and len(model[:2]) == 2


def test_a_shared_parameter_or_module_is_yielded_once():
    first, second = nn.Linear(3, 3), nn.Linear(3, 3)
    second.weight = first.weight  # tied weights
    model = nn.Sequential(first, second, first)  # and a module used twice
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.bias"]
    assert list(model.state_dict()) == names
    x = cr.randn(5, 3)
    model(x).sum().backward()
    assert first.weight.grad is not None and first.weight.grad.shape == (3, 3)


def test_a_reference_cycle_between_modules_terminates():
    parent = nn.Sequential(nn.Linear(2, 2))
    parent[0].owner = parent  # a back-reference must not make the walk loop
    assert [n for n, _ in parent.named_parameters()] == ["0.weight", "0.bias"]


def test_module_without_super_init_still_has_a_training_flag():
    class Bare(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x)

    model = Bare()
    assert model.training and len(list(model.parameters())) == 2
    model.eval()
    assert not model.training and not model.fc.training


def test_state_dict_round_trip_includes_buffers_and_copies():
    cr.manual_seed(0)
    source = Net()
    source(cr.randn(8, 3))  # training step: the batch norm's running statistics move
    state = source.state_dict()
    assert {"bn.running_mean", "bn.running_var"} <= set(state)
    assert not np.allclose(state["bn.running_mean"], 0)
    state["fc1.weight"][...] = 0  # a copy: the model keeps its weights
    assert np.any(source.fc1.weight.data != 0)
    state = source.state_dict()

    cr.manual_seed(1)
    target = Net()
    assert not np.allclose(target.fc1.weight.data, source.fc1.weight.data)
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for name, value in target.state_dict().items():
        np.testing.assert_array_equal(value, state[name])
    x = cr.randn(4, 3)
    np.testing.assert_array_equal(source.eval()(x).data, target.eval()(x).data)


def test_load_state_dict_accepts_tensors_and_keeps_the_model_dtype():
    model = nn.Linear(2, 3)
    state = {k: cr.tensor(v.astype(np.float64) + 1) for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert model.weight.dtype == np.float32
    np.testing.assert_allclose(model.weight.data, state["weight"].data.astype(np.float32))


def _snapshot(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def test_strict_loading_lists_every_problem_and_leaves_the_model_untouched():
    model = Net()
    before = _snapshot(model)
    state = Net().state_dict()
    del state["fc1.bias"], state["bn.running_var"]
    state["extra.weight"] = np.zeros(3, dtype=np.float32)
    state["blocks.0.weight"] = np.zeros((5, 4), dtype=np.float32)
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    for name in ("fc1.bias", "bn.running_var", "extra.weight", "blocks.0.weight"):
        assert name in message
    assert "(5, 4)" in message and "(4, 4)" in message
    assert isinstance(info.value, ValueError)  # also a ValueError, chainrule's input errors
    after = _snapshot(model)
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value)


def test_non_strict_loading_reports_keys_but_shape_mismatch_still_fails():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    state = {"0.weight": np.ones((2, 2), np.float32), "9.bias": np.ones(1, np.float32)}
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["0.bias", "1.weight", "1.bias"]
    assert result.unexpected_keys == ["9.bias"]
    np.testing.assert_array_equal(model[0].weight.data, np.ones((2, 2)))
    before = _snapshot(model)
    bad = {"0.weight": np.full((2, 2), 7.0), "1.weight": np.ones((1, 2))}
    with pytest.raises(ValueError, match=r"1\.weight.*\(1, 2\).*\(2, 1\)"):
        model.load_state_dict(bad, strict=False)
    np.testing.assert_array_equal(model.state_dict()["0.weight"], before["0.weight"])


def test_load_state_dict_rejects_non_numeric_values():
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="weight"):
        model.load_state_dict({"weight": np.array([["a"]]), "bias": np.zeros(1)})


def test_train_and_eval_propagate_to_every_descendant():
    model = Net()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    modules = list(model.modules())
    assert len(modules) == 6  # Net, fc1, three blocks, bn
    assert not any(m.training for m in modules)
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_sets_gradients_to_none():
    model = Net()
    model(cr.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_requires_grad_freezes_and_astype_converts():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    model.double()
    assert all(v.dtype == np.float64 for v in model.state_dict().values())
    model.float()
    assert all(v.dtype == np.float32 for v in model.state_dict().values())


def test_parameter_is_a_tensor_that_requires_grad():
    p = nn.Parameter(np.zeros(3, dtype=np.float32))
    assert isinstance(p, cr.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:")
    assert type(p * 2) is cr.Tensor
    with pytest.raises(TypeError):
        nn.Parameter(np.zeros(3, dtype=np.int64))


def test_repr_reads_like_pytorch():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.25))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Dropout(p=0.25)\n"
        ")"
    )
    nested = repr(Net())
    assert "  (blocks.1): Tanh()\n" in nested
    assert "  (bn): BatchNorm1d(2, eps=1e-05, momentum=0.1, affine=True)\n" in nested
    assert repr(nn.Conv2d(1, 6, 5, padding=2)) == (
        "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"
    )
    assert repr(nn.CrossEntropyLoss(reduction="sum")) == "CrossEntropyLoss(reduction='sum')"


def test_containers_reject_non_modules():
    with pytest.raises(TypeError, match="item 1"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_sequential_names_the_layer_whose_width_does_not_fit():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2))
    x = cr.tensor(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"^layer 2: f\[2\] = W\[2\]ᵀ a\[1\] needs a\[1\] with 5"):
        model(x)
    with pytest.raises(ValueError, match=r"^layer 1: .* needs a\[0\] with 4 features, got 6"):
        model(cr.tensor(np.ones((2, 6), np.float32)))


def test_sequential_passes_other_errors_through_unchanged():
    class Fails(nn.Module):
        in_features = 4

        def forward(self, x):
            raise ValueError("something else")

    with pytest.raises(ValueError, match="^something else$"):
        nn.Sequential(Fails())(cr.tensor(np.ones((2, 4), np.float32)))
