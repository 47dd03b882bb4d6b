"""Property tests (hypothesis, derandomised, bounded): GAE against a plain loop,
config round trips through plain data and TOML literals, CG on random SPD systems."""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nprl.batch import gae
from nprl.config import Config, parse_value, resolve
from nprl.curvature import conjugate_gradient

PROPS = settings(max_examples=60, derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])


def gae_loop(r, v, term, trunc, final_v, last_v, gamma, lam):
    """GAE written as the textbook loop over one env's time steps, in Python floats."""
    T, N = len(r), len(r[0])
    adv = [[0.0] * N for _ in range(T)]
    for n in range(N):
        running = 0.0
        for t in reversed(range(T)):
            if term[t][n]:
                nxt = 0.0
            elif trunc[t][n]:
                nxt = final_v[t][n]
            else:
                nxt = v[t + 1][n] if t + 1 < T else last_v[n]
            delta = r[t][n] + gamma * nxt - v[t][n]
            if term[t][n] or trunc[t][n]:
                running = 0.0  # the next row belongs to a new episode
            running = delta + gamma * lam * running
            adv[t][n] = running
    return adv


@st.composite
def rollouts(draw):
    T, N = draw(st.integers(1, 12)), draw(st.integers(1, 4))
    num = st.floats(-10, 10, allow_nan=False, width=64)
    mat = lambda elem: draw(st.lists(st.lists(elem, min_size=N, max_size=N),  # noqa: E731
                                     min_size=T, max_size=T))
    # An episode ends by termination, truncation, both (a time limit hit on a terminal
    # step: gymnasium reports both), or not at all.
    end = mat(st.sampled_from(["none", "none", "term", "trunc", "both"]))
    term = [[e in ("term", "both") for e in row] for row in end]
    trunc = [[e in ("trunc", "both") for e in row] for row in end]
    return (mat(num), mat(num), term, trunc, mat(num),
            draw(st.lists(num, min_size=N, max_size=N)),
            draw(st.floats(0.01, 1.0)), draw(st.floats(0.0, 1.0)))


@PROPS
@given(rollouts())
def test_gae_matches_the_loop(rollout):
    r, v, term, trunc, final_v, last_v, gamma, lam = rollout
    f64 = lambda x, dt=torch.float64: torch.tensor(x, dtype=dt)  # noqa: E731
    final_masked = [[fv if tr and not te else 0.0 for fv, tr, te in zip(*row)]
                    for row in zip(final_v, trunc, term)]
    adv, ret = gae(f64(r), f64(v), f64(term, torch.bool), f64(trunc, torch.bool),
                   f64(final_masked), f64(last_v), gamma, lam)
    expected = gae_loop(r, v, term, trunc, final_masked, last_v, gamma, lam)
    assert torch.allclose(adv, f64(expected), rtol=1e-9, atol=1e-9)
    assert torch.allclose(ret, adv + f64(v), rtol=0, atol=0)


AGENT_KEYS = {
    "trpo": {"max_kl": st.floats(1e-4, 1.0), "cg_iters": st.integers(1, 50),
             "line_search": st.booleans(), "damping": st.sampled_from(["fixed", "adaptive"]),
             "fisher_fraction": st.floats(0.01, 1.0)},
    "ppo": {"lr": st.floats(1e-6, 1e-1), "clip_range_vf": st.none() | st.floats(0.01, 10),
            "target_kl": st.none() | st.floats(1e-3, 1.0), "lr_decay": st.booleans()},
}
RUN_KEYS = {"n_envs": st.integers(1, 64), "gamma": st.floats(0.5, 1.0),
            "gae_lambda": st.floats(0.0, 1.0), "normalize_obs": st.booleans(),
            "hidden_sizes": st.lists(st.integers(1, 256), min_size=1, max_size=3),
            "critic_hidden_sizes": st.none() | st.lists(st.integers(1, 64), min_size=1,
                                                         max_size=2),
            "solved_threshold": st.none() | st.floats(-1e3, 1e3),
            "activation": st.sampled_from(["tanh", "relu", "elu"])}


@PROPS
@given(st.sampled_from(sorted(AGENT_KEYS)).flatmap(
    lambda a: st.tuples(st.just(a), st.fixed_dictionaries({}, optional={**RUN_KEYS,
                                                                         **AGENT_KEYS[a]}),
                        st.integers(0, 2**31))))
def test_config_round_trips_through_plain_data(case):
    agent, overrides, seed = case
    cfg = resolve(agent, "CartPole-v1", seed, overrides)
    again = Config.from_dict(cfg.to_dict())
    assert again == cfg and type(again.agent) is type(cfg.agent)
    for key, value in overrides.items():
        got = cfg.flat()[key]
        assert got == (tuple(value) if isinstance(value, list) else value), key


def toml_literal(value):
    """How a user would type ``value`` after ``--set key=``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else
                                                         ("inf" if value > 0 else "-inf"))
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


scalars = (st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(width=64)
           | st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
                     max_size=12))


@PROPS
@given(scalars | st.lists(st.integers(-1000, 1000), max_size=5))
def test_parse_value_reads_toml_literals_back(value):
    parsed = parse_value(toml_literal(value))
    if isinstance(value, float) and math.isnan(value):
        assert isinstance(parsed, float) and math.isnan(parsed)
    else:
        assert parsed == value and type(parsed) is type(value)


@PROPS
@given(st.integers(1, 12), st.integers(0, 2**32 - 1), st.floats(1e-3, 1e3))
def test_cg_solves_spd_systems_in_n_iterations(n, seed, scale):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eig = scale * np.exp(rng.uniform(0, np.log(100), n))  # condition number ≤ 100
    A = torch.tensor(q @ np.diag(eig) @ q.T)
    x_true = torch.tensor(rng.standard_normal(n))
    b = A @ x_true
    rel = lambda x: float(torch.linalg.vector_norm(A @ x - b) / torch.linalg.vector_norm(b))  # noqa: E731
    # Exact arithmetic solves in n iterations; float64 loses orthogonality between close
    # eigenvalues (textbook CG stalls near 1e-6 on some of these), so: n iterations get
    # close, a few more get to rounding level.
    res = conjugate_gradient(lambda v: A @ v, b, iters=n, tol=1e-12)
    assert res.iters <= n and rel(res.x) <= 1e-4
    assert abs(res.residual - rel(res.x)) <= 1e-6  # the reported residual is the true one
    res = conjugate_gradient(lambda v: A @ v, b, iters=3 * n, tol=1e-12)
    assert rel(res.x) <= 1e-10 and res.reason == "converged"
    assert torch.allclose(res.x, x_true, rtol=0, atol=1e-8 * float(x_true.abs().max()))


@pytest.mark.parametrize("n", [1, 5])
def test_cg_zero_rhs_and_indefinite_are_safe(n):
    A = -torch.eye(n, dtype=torch.float64)
    res = conjugate_gradient(lambda v: A @ v, torch.ones(n, dtype=torch.float64), iters=n)
    assert res.reason == "nonpositive_curvature" and torch.equal(res.x, torch.zeros(n).double())
    res = conjugate_gradient(lambda v: A @ v, torch.zeros(n, dtype=torch.float64), iters=n)
    assert res.reason == "zero_rhs" and res.iters == 0
