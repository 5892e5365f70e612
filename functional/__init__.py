"""strata.functional (import as F): torch.nn.functional names and arguments."""
from .activations import *  # noqa: F401,F403
from .activations import __all__ as _act_all
from ..core.ops_movement import pad  # noqa: F401
from ..core.ops_linalg import einsum  # noqa: F401

from .conv import *  # noqa: F401,F403,E402  (training stack: conv and pooling)
from .conv import __all__ as _conv_all  # noqa: E402
from .layers import (linear, bilinear, embedding, dropout, batch_norm, layer_norm,  # noqa: F401,E402
                     group_norm, rms_norm)
from .losses import *  # noqa: F401,F403,E402
from .losses import __all__ as _loss_all  # noqa: E402

__all__ = list(_act_all) + ["pad", "einsum"] + list(_conv_all) + list(_loss_all) + [
    "linear", "bilinear", "embedding", "dropout", "batch_norm", "layer_norm", "group_norm", "rms_norm"]
