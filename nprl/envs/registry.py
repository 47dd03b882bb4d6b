"""Task ids that nprl implements natively in torch (filled by the torch env modules)."""

from __future__ import annotations

# env id -> class implementing nprl.envs.base.VecEnv with signature
#   cls(num_envs: int, device="cpu", dtype=torch.float32)
TORCH_ENVS: dict[str, type] = {}
