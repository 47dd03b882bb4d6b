"""nprl: natural-gradient reinforcement learning in PyTorch.

NPG, TRPO and PPO (and ACKTR on K-FAC) on one curvature core; see ``nprl.train``.
"""

from nprl.errors import NprlError

__version__ = "0.1.0"


def train(*args, **kwargs):
    """See ``nprl.api.train`` (imported lazily so ``import nprl`` stays light)."""
    from nprl.api import train as _train

    return _train(*args, **kwargs)


__all__ = ["train", "NprlError", "__version__"]
