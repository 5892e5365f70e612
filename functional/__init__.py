"""strata.functional (import as F): torch.nn.functional names and arguments."""
from .activations import *  # noqa: F401,F403
from .activations import __all__ as _act_all
from .conv import *  # noqa: F401,F403
from .layers import (linear, bilinear, embedding, dropout, batch_norm, layer_norm, group_norm,  # noqa: F401
                     rms_norm)
from .losses import *  # noqa: F401,F403
from ..core.ops_movement import pad  # noqa: F401
from ..core.ops_linalg import einsum  # noqa: F401
