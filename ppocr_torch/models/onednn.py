"""CPU inference through oneDNN's fused primitives, with weights packed once per input shape.

Eager ``nn.Conv2d`` on CPU hands oneDNN a plain ``[O, I, kH, kW]`` weight on every call, which oneDNN
reorders into its blocked layout each time; ``nn.Linear`` goes through a GEMM that is slow for the
``[T, 120] x [120, 18k]`` classifier. The deploy form therefore switches every ``Conv2d`` and ``Linear`` to
the subclasses below: the same parameters (the ``state_dict``, its digest and saving are unchanged), but an
inference forward that calls ``torch.ops.mkldnn._convolution_pointwise`` / ``_linear_pointwise`` with the
weight reordered once and kept (per input shape for convolutions, as oneDNN picks the layout by shape), and
a following ReLU/GELU/Hardswish/SiLU fused into the convolution as a post-op. Convolutions run channels_last
(NHWC). These are the primitives ``torch.compile``'s CPU freezing pass emits, without its compile time.

Every call of a shape uses the packed weight (packed on first use), so a result never depends on which
shapes ran before. Anything else (training, autograd, CUDA, float16/bfloat16, a torch without oneDNN,
``PPOCR_TORCH_ONEDNN=0``) takes the plain ``nn.Conv2d``/``nn.Linear`` path followed by the fused activation,
so the module computes the same function everywhere. The packed copies are a cache: rebuilt when a weight
changes in place (``tensor._version``) and never saved.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict

import torch
from torch import nn

# activation class -> (oneDNN post-op name, algorithm); exact GELU only ("none" = erf)
_POST_OPS = {nn.ReLU: ("relu", ""), nn.Hardswish: ("hardswish", ""), nn.SiLU: ("swish", "")}
_PACKED_SHAPES = 8  # packed convolution weights kept per module (one per input shape, oldest dropped)

# oneDNN keeps up to 1024 primitives (one per layer and input shape), each with its own JIT code and
# buffers: recognising 500 lines of many widths twice grew a process from 3.3 to 3.7 GB. 128 (two shapes of
# the largest models' layers) measured 2.7 GB, flat on repeat, at the same latency; 32 thrashes (a forward
# needs more). Read by oneDNN when it creates its first primitive; an explicit setting wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "128")


def onednn_available() -> bool:
    """True when this torch has oneDNN's fused CPU ops (``PPOCR_TORCH_ONEDNN=0`` turns them off)."""
    if os.environ.get("PPOCR_TORCH_ONEDNN", "1").strip() == "0":
        return False
    ops = torch.ops.mkldnn
    try:
        return bool(torch.backends.mkldnn.is_available()) and all(
            hasattr(ops, n) for n in ("_convolution_pointwise", "_reorder_convolution_weight",
                                      "_linear_pointwise", "_reorder_linear_weight"))
    except (AttributeError, RuntimeError):
        return False


def _post_op(act: nn.Module | None) -> tuple[str, str] | None:
    if act is None:
        return "none", ""
    if type(act) is nn.GELU:
        return ("gelu", "none") if act.approximate == "none" else ("gelu", "tanh")
    return _POST_OPS.get(type(act))


def _fast_path(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)))


class OneDNNConv2d(nn.Conv2d):
    """``nn.Conv2d`` (zero padding) with an optional fused activation ``act``, packed per input shape."""

    def _setup_onednn(self, act: nn.Module | None = None, act_slot: str | None = None) -> None:
        # the fused activation is a plain attribute, not a submodule: named_modules() and the state_dict
        # stay those of the plain model
        object.__setattr__(self, "_act", act if act is not None else nn.Identity())
        self._act_slot = act_slot  # its name in the parent module, to put it back (plain_modules)
        self._post = _post_op(act)
        self._packed: OrderedDict = OrderedDict()
        self._pack_lock = threading.Lock()

    def _weight_for(self, shape: tuple) -> torch.Tensor:
        """The weight packed for ``shape`` (packed on first use; the last ``_PACKED_SHAPES`` shapes are kept).

        Every call of a shape uses the packed weight, so a result never depends on whether its shape was seen
        before (oneDNN may pick another kernel for a plain weight).
        """
        key = (shape, self.weight._version, self.weight.data_ptr())
        packed = self._packed.get(key)
        if packed is not None:
            return packed
        with torch.no_grad():
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight.detach(), list(self.padding), list(self.stride), list(self.dilation),
                self.groups, list(shape))
        with self._pack_lock:
            self._packed[key] = packed
            self._trim()
        return packed

    def _trim(self) -> None:
        while len(self._packed) > _PACKED_SHAPES:
            self._packed.popitem(last=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _fast_path(x, self.weight) or x.dim() != 4:
            return self._act(super().forward(x))
        attr, algorithm = self._post
        bias = None if self.bias is None else self.bias.detach()
        # channels_last: oneDNN computes NHWC with the same kernel whether the weight is packed or not, so the
        # result never depends on whether this shape was seen before (in NCHW the two differ in the last bits)
        x = x.contiguous(memory_format=torch.channels_last)
        return torch.ops.mkldnn._convolution_pointwise(
            x, self._weight_for(tuple(x.shape)), bias, list(self.padding), list(self.stride),
            list(self.dilation), self.groups, attr, [], algorithm)

    def __getstate__(self):  # deepcopy/pickle: the packed cache and its lock are rebuilt, not copied
        state = self.__dict__.copy()
        state["_packed"], state["_pack_lock"] = OrderedDict(), None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._pack_lock = threading.Lock()


class OneDNNLinear(nn.Linear):
    """``nn.Linear`` whose weight is packed once for oneDNN's inner-product primitive."""

    def _setup_onednn(self) -> None:
        self._packed = None

    def _packed_weight(self) -> torch.Tensor:
        key = (self.weight._version, self.weight.data_ptr())
        packed = self._packed
        if packed is None or packed[0] != key:
            with torch.no_grad():
                packed = (key, torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), None))
            self._packed = packed
        return packed[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _fast_path(x, self.weight) or x.dim() < 2 or x.numel() == 0:
            return super().forward(x)
        bias = None if self.bias is None else self.bias.detach()
        return torch.ops.mkldnn._linear_pointwise(x, self._packed_weight(), bias, "none", [], "")

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_packed"] = None
        return state


def use_onednn(model: nn.Module) -> nn.Module:
    """Switch ``model``'s convolutions and linears to the oneDNN subclasses in place (idempotent).

    An activation that directly follows a convolution in an ``nn.Sequential`` (or a fused ``ConvBNAct``)
    moves into the convolution as its post-op; its slot becomes ``nn.Identity``. Parameters and buffers are
    untouched. Returns ``model`` unchanged when oneDNN is not available.
    """
    from .layers import ConvBNAct

    if not onednn_available():
        return model
    for parent in list(model.modules()):
        names = list(parent._modules)
        for i, name in enumerate(names):
            child = parent._modules[name]
            if type(child) is nn.Conv2d and child.padding_mode == "zeros" and not isinstance(child.padding, str):
                act_slot = None
                if isinstance(parent, nn.Sequential) and i + 1 < len(names):
                    act_slot = names[i + 1]
                elif isinstance(parent, ConvBNAct) and parent.fused and name == parent.conv_name:
                    act_slot = parent.act_name
                act = parent._modules.get(act_slot) if act_slot else None
                if act is not None and _post_op(act) is None:
                    act = None
                child.__class__ = OneDNNConv2d
                child._setup_onednn(act, act_slot if act is not None else None)
                if act is not None:
                    parent._modules[act_slot] = nn.Identity()
            elif type(child) is nn.Linear:
                child.__class__ = OneDNNLinear
                child._setup_onednn()
    return model


_ONEDNN_ATTRS = ("_act", "_act_slot", "_post", "_packed", "_pack_lock")


def _make_plain(module: nn.Module) -> None:
    """Class back to ``nn.Conv2d``/``nn.Linear``, without the oneDNN attributes (the packed weights, the lock:
    a plain module must deep-copy and pickle like any other)."""
    module.__class__ = nn.Conv2d if isinstance(module, OneDNNConv2d) else nn.Linear
    for name in _ONEDNN_ATTRS:
        module.__dict__.pop(name, None)


def to_plain(module: nn.Module) -> nn.Module:
    """Switch ``module`` (and everything in it) back to plain ``nn.Conv2d``/``nn.Linear`` modules with every
    fused activation in its own slot, in place; returns ``module``."""
    if isinstance(module, OneDNNLinear) or (isinstance(module, OneDNNConv2d) and module._act_slot is None):
        _make_plain(module)
        return module
    for parent in list(module.modules()):
        for child in list(parent._modules.values()):
            if isinstance(child, OneDNNConv2d):
                if child._act_slot is not None:
                    parent._modules[child._act_slot] = child._act
                _make_plain(child)
            elif isinstance(child, OneDNNLinear):
                _make_plain(child)
    return module


@contextlib.contextmanager
def plain_modules(model: nn.Module):
    """Run ``model`` with plain modules (:func:`to_plain`) for the duration of the block (per-module hooks,
    layer-by-layer parity), then switch back."""
    switched = any(isinstance(m, (OneDNNConv2d, OneDNNLinear)) for m in model.modules())
    to_plain(model)
    try:
        yield model
    finally:
        if switched:
            use_onednn(model)
