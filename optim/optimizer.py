"""Optimizer base class: parameter groups, state, state_dict / load_state_dict (torch layout)."""
from __future__ import annotations

import copy
from typing import Callable, Iterable

import numpy as np

from ..core.grad_mode import no_grad
from ..core.tensor import Tensor


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base of SGD, Adam, ...: holds `param_groups` (dicts with "params" and hyper-parameters)
    and per-parameter `state`. Subclasses implement `_update_group(group)` using in-place
    Tensor ops under no_grad."""

    def __init__(self, params: Iterable, defaults: dict) -> None:
        self.defaults = defaults
        self.state: dict = {}
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors "
                            "or dicts, but got a Tensor (wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group: dict) -> None:
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        group = {"params": params}
        for k, v in self.defaults.items():
            if v is required and k not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization "
                                 f"parameter {k}")
            group[k] = param_group.get(k, v)
        for k, v in param_group.items():
            if k != "params":
                group[k] = v
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter appears twice in one parameter group")
        self.param_groups.append(group)
        self._init_group_state(group)

    def _init_group_state(self, group: dict) -> None:
        """Hook for optimizers whose state exists before the first step (Adagrad)."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad = p.grad.detach() * 0

    @no_grad()
    def step(self, closure: Callable | None = None):
        loss = None
        if closure is not None:
            from ..core.grad_mode import enable_grad
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _update_group(self, group: dict) -> None:
        raise TypeError(f"{type(self).__name__} must define _update_group(group)")

    def _state(self, p: Tensor) -> dict:
        s = self.state.get(p)
        if s is None:
            s = self.state[p] = {}
        return s

    # ------------------------------------------------------------ state dict
    def state_dict(self) -> dict:
        """{'state': {index: {name: value}}, 'param_groups': [{..., 'params': [indices]}]} like torch."""
        index: dict = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            ids = []
            for p in g["params"]:
                if id(p) not in index:
                    index[id(p)] = len(index)
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.detach() if isinstance(v, Tensor) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(groups)} parameter groups, this optimizer "
                             f"has {len(self.param_groups)}")
        sizes = [len(g["params"]) for g in self.param_groups]
        saved_sizes = [len(g["params"]) for g in groups]
        if sizes != saved_sizes:
            raise ValueError(f"loaded state dict contains a parameter group that doesn't match the "
                             f"size of optimizer's group ({saved_sizes} vs {sizes})")
        id_map = {}
        for g_saved, g in zip(groups, self.param_groups):
            for i, p in zip(g_saved["params"], g["params"]):
                id_map[int(i)] = p
        new_state: dict = {}
        for k, st in state_dict["state"].items():
            k = int(k)
            if k not in id_map:
                raise ValueError(f"optimizer state refers to parameter {k}, which no group holds")
            p = id_map[k]
            new_state[p] = {}
            for name, v in st.items():
                if isinstance(v, Tensor) or isinstance(v, np.ndarray):
                    v = self._tensor_like(v, p, name)
                new_state[p][name] = v
        self.state = new_state
        for g_saved, g in zip(groups, self.param_groups):
            for k, v in g_saved.items():
                if k != "params":
                    g[k] = copy.deepcopy(v) if isinstance(v, (list, dict)) else v

    @staticmethod
    def _tensor_like(v, p: Tensor, name: str) -> Tensor:
        arr = v.detach().numpy() if isinstance(v, Tensor) else v
        if arr.ndim and tuple(arr.shape) != tuple(p.shape):
            raise ValueError(f"optimizer state '{name}' has shape {tuple(arr.shape)} but its parameter "
                             f"has shape {tuple(p.shape)}")
        d = p.dtype if arr.dtype.kind == "f" else None
        arr = np.asarray(arr.astype(d.np) if d is not None else arr, order="C")
        from ..core.dtype import from_numpy
        return Tensor._make(p._b.from_numpy(arr, from_numpy(arr.dtype)), p._b)

    def __repr__(self) -> str:
        s = type(self).__name__ + " ("
        for i, g in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for k in sorted(g):
                if k != "params":
                    s += f"\n    {k}: {g[k]}"
        return s + "\n)"


def _check(name: str, value, lo: float = 0.0) -> None:
    if isinstance(value, Tensor):
        return
    if not value >= lo:
        raise ValueError(f"Invalid {name}: {value}")
