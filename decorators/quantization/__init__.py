"""The Quantization decorator and its pieces: scheme, QTensor primitive, ops, models, checkpoints."""
from .backend import Quantization
from .ops import ActQuant, last_path, path_counts, reset_path_counts
from .qtensor import QTensor
from .scheme import QuantScheme, QuantSchemeError

__all__ = ["Quantization", "QuantScheme", "QuantSchemeError", "QTensor", "ActQuant", "last_path",
           "path_counts", "reset_path_counts"]
