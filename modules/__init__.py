"""strata.modules (import as nn): Module, Parameter, layers, containers, losses, init, utils."""
from . import init, utils
from .activation import (ELU, GELU, SELU, Hardsigmoid, Hardswish, LeakyReLU, LogSoftmax, Mish, ReLU,
                         Sigmoid, SiLU, Softmax, Softplus, Tanh)
from .container import ModuleDict, ModuleList, Sequential
from .conv import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d, AvgPool2d,
                   Conv1d, Conv2d, ConvTranspose2d, MaxPool1d, MaxPool2d)
from .linear import Bilinear, Dropout, Embedding, Flatten, Identity, Linear, Unflatten
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss,
                   NLLLoss, SmoothL1Loss)
from .module import IncompatibleKeys, Module, Parameter, StateDictError
from .norm import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm

__all__ = [n for n in dir() if not n.startswith("_")]
