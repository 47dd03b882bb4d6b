"""One frozen dataclass config per algorithm; field names follow the math.

Typical values are the defaults; presets in ``agents/*.toml`` tune them per task.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NPGConfig:
    """Natural policy gradient: s = sqrt(2δ / dᵀFd) · d, d = (F + λI)⁻¹ g by CG.

    max_kl: δ, the KL budget of one update (0.01 usual; 0.02–0.05 on small tasks).
    max_kl_end: if set, δ is annealed linearly from ``max_kl`` to this over the run
        (large early steps for speed, small late ones for a stable final policy).
    cg_iters / cg_tol: conjugate-gradient budget (10, 1e-10).
    cg_damping: λ, or its starting value when ``damping`` = "adaptive" (0.1).
    damping: "fixed" or "adaptive" (Levenberg–Marquardt on actual/expected improvement).
    fisher: "true" (analytic, under the policy) or "empirical" (taken actions).
    fisher_fraction: fraction of the batch the Fisher is estimated on (1.0; 0.1–0.2 is the
        usual speed trick of the TRPO reference code).
    precondition: CG preconditioner, "none", "diagonal" (exact diag F) or "kfac" (the
        batch's K-FAC approximation, exact-expectation G, same damping λ).
    line_search: backtrack along the step until KL ≤ δ and the surrogate improves.
    backtrack_coef / max_backtracks / accept_ratio: the line search (0.8, 10, 0.1).
    normalize_advantage: standardise advantages per batch.
    vf_lr / vf_epochs / vf_minibatches: critic regression with Adam (1e-3, 5, 4).
    """

    max_kl: float = 0.01
    max_kl_end: float | None = None
    cg_iters: int = 10
    cg_tol: float = 1e-10
    cg_damping: float = 0.1
    damping: str = "fixed"
    fisher: str = "true"
    fisher_fraction: float = 1.0
    precondition: str = "none"
    line_search: bool = False
    backtrack_coef: float = 0.8
    max_backtracks: int = 10
    accept_ratio: float = 0.1
    normalize_advantage: bool = True
    vf_lr: float = 1e-3
    vf_epochs: int = 5
    vf_minibatches: int = 4


@dataclass(frozen=True)
class TRPOConfig(NPGConfig):
    """TRPO = NPG + the KL-constrained backtracking line search (Schulman et al. 2015)."""

    line_search: bool = True


@dataclass(frozen=True)
class PPOConfig:
    """PPO with the clipped surrogate (Schulman et al. 2017).

    lr: Adam step for actor and critic (3e-4); lr_decay: linear decay to 0 over the run.
    n_epochs / n_minibatches: passes over the batch and splits per pass (10, 4).
    clip_range: ε of the ratio clip (0.2); clip_range_vf: value clip (None: off).
    ent_coef / vf_coef: entropy bonus (0.0) and value-loss weight (0.5).
    max_grad_norm: global gradient-norm clip (0.5).
    target_kl: stop the epochs early once the approximate KL exceeds 1.5× this (None: off).
    """

    lr: float = 3e-4
    lr_decay: bool = False
    n_epochs: int = 10
    n_minibatches: int = 4
    clip_range: float = 0.2
    clip_range_vf: float | None = None
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    normalize_advantage: bool = True


@dataclass(frozen=True)
class ACKTRConfig:
    """ACKTR (Wu et al. 2017): natural steps with K-FAC curvature for actor and critic.

    Actor: d = (F̂ + λI)⁻¹ g with F̂ the K-FAC Fisher (running factors), and the step
    s = η·d with η = min(lr, sqrt(2·kl_clip / dᵀF̂d)): the quadratic model of the KL,
    ½ sᵀF̂s, never exceeds ``kl_clip``, and ``lr`` caps the step when the gradient is small.

    lr: η_max, the cap on the step scale (0.25 in the ACKTR paper).
    kl_clip: δ, the KL budget of one actor step (0.001 Atari; 0.01–0.05 on small tasks).
    kl_curvature: which Fisher measures dᵀFd in η: "exact" (the batch's exact Fisher, one
        J-product: the KL bound holds to second order) or "kfac" (F̂, the paper's rule;
        measured on CartPole, dᵀF̂d underestimates dᵀFd 3–7× with this batch's factors and
        10–100× with running averages, so the actual KL overshoots kl_clip by as much).
    kfac_decay: running-average decay of the Kronecker factors (0.95; 0 = this batch only).
    inverse_every: eigendecompositions of the factors recomputed every k updates (1–10).
    kfac_damping: λ, or its starting value when ``damping`` = "adaptive" (1e-3–1e-1).
    damping: "fixed" or "adaptive" (Levenberg–Marquardt on actual/expected improvement).
    kfac_damping_form: "eigen" (exact (F̂ + λI)⁻¹ in the factors' eigenbases) or
        "factored" (Tikhonov π-split (A + π√λI)⁻¹ ⊗ (G + √λ/π I)⁻¹, Martens & Grosse).
    momentum: heavy-ball coefficient μ on the policy gradient before preconditioning,
        g̃ ← g + μ g̃ (0 = off; ACKTR's optimiser uses 0.9). The KL clip applies to the
        final step, so the bound holds with momentum too.
    fisher: "true" (under the policy) or "empirical" (taken actions).
    g_mode / g_samples: G from the exact output Fisher ("exact") or from ``g_samples``
        sampled actions per observation ("mc", the ACKTR paper's estimator).
    normalize_advantage: standardise advantages per batch.
    vf_lr / vf_iters / vf_damping: the critic's K-FAC Gauss–Newton steps on ½E[(V − R)²]
        (``nprl.agents.kfac_critic``): ``vf_iters`` steps (3) of ``vf_lr`` (0.5–1) times the
        exact Gauss–Newton step length along the K-FAC direction, damping λ_v (0.01).
    """

    lr: float = 0.25
    kl_clip: float = 0.01
    kl_curvature: str = "exact"
    kfac_decay: float = 0.95
    inverse_every: int = 1
    kfac_damping: float = 0.01
    damping: str = "fixed"
    kfac_damping_form: str = "eigen"
    momentum: float = 0.0
    fisher: str = "true"
    g_mode: str = "exact"
    g_samples: int = 1
    normalize_advantage: bool = True
    vf_lr: float = 1.0
    vf_iters: int = 3
    vf_damping: float = 0.01
