"""nprl's torch-native classic-control envs against gymnasium 1.4.

Parity runs feed the same actions to gymnasium's SyncVectorEnv (SAME_STEP auto-reset,
one TimeLimit per env) and to the float64 torch env started from gymnasium's own states;
when an episode ends, the torch env's state is re-synced to gymnasium's new reset state.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from nprl.envs import TORCH_ENVS, GymVecEnv, VecEnv, make_env, make_vec
from nprl.envs.torch_base import TorchVecEnv
from nprl.errors import NprlError

ENV_IDS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]
TOL = 1e-5
Policy = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _mixed(controller: Policy, random: Policy) -> Policy:
    """Envs 0 and 1 follow ``controller`` (episodes that terminate, or for CartPole
    survive to the time limit), envs 2 and 3 act at random."""

    def policy(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        actions = random(obs, rng)
        actions[:2] = controller(obs[:2], rng)
        return actions

    return policy


def _discrete_random(n: int) -> Policy:
    return lambda obs, rng: rng.integers(0, n, len(obs))


def _box_random(high: float) -> Policy:
    # 1.5× the bounds, so that clipping is exercised; multiples of 1/64, so that
    # gymnasium's float32 arithmetic on the action (e.g. Pendulum's 3·u) is exact.
    return lambda obs, rng: (
        np.round(rng.uniform(-1.5 * high, 1.5 * high, (len(obs), 1)) * 64) / 64
    ).astype(np.float32)


def _box_pump(high: float, velocity_col: int) -> Policy:
    """Push along the velocity with 0.75-1.5× the bound: pumps energy in."""
    return lambda obs, rng: (
        np.sign(obs[:, velocity_col : velocity_col + 1] + 1e-12)
        * np.round(rng.uniform(0.75 * high, 1.5 * high, (len(obs), 1)) * 64)
        / 64
    ).astype(np.float32)


# env id -> (policy, vector steps, re-sync period or None). 4 envs per run.
# Two runs also re-sync the whole state to gymnasium's periodically and compare
# free-running in between, because their trajectories separate for reasons that are not
# bugs: CartPole's balanced pole amplifies differences ~e^(4t), and torch's SLEEF sin/cos
# and numpy's libm differ by one ulp on ~0.2% of arguments (without re-syncing the
# observations part by >1e-5 after ~330 steps); gymnasium rounds MountainCarContinuous'
# state to float32 every step while the torch env keeps float64 (>1e-5 after ~980 steps).
PARITY: dict[str, tuple[Policy, int, int | None]] = {
    "CartPole-v1": (
        _mixed(
            lambda o, r: (o[:, 2] + 0.5 * o[:, 3] + 0.01 * o[:, 0] + 0.1 * o[:, 1] > 0) * 1,
            _discrete_random(2),
        ),
        1100,
        50,
    ),
    "Acrobot-v1": (
        _mixed(lambda o, r: np.where(o[:, 5] > 0, 2, 0), _discrete_random(3)),
        1100,
        None,
    ),
    "MountainCar-v0": (
        _mixed(lambda o, r: np.where(o[:, 1] >= 0, 2, 0), _discrete_random(3)),
        600,
        None,
    ),
    "MountainCarContinuous-v0": (_mixed(_box_pump(1.0, 1), _box_random(1.0)), 1100, 100),
    "Pendulum-v1": (_mixed(_box_pump(2.0, 2), _box_random(2.0)), 600, None),
}


def _gym_states(envs: gym.vector.SyncVectorEnv) -> torch.Tensor:
    return torch.tensor(
        np.stack([np.asarray(e.unwrapped.state, dtype=np.float64) for e in envs.envs])
    )


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_parity_with_gymnasium(env_id: str) -> None:
    policy, steps, resync = PARITY[env_id]
    n = 4
    ref = gym.make_vec(
        env_id,
        n,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
    )
    ref_obs, _ = ref.reset(seed=123)
    env = TORCH_ENVS[env_id](n, dtype=torch.float64)
    obs = env.set_state(_gym_states(ref)).numpy()
    np.testing.assert_allclose(obs, ref_obs, atol=TOL)
    rng = np.random.default_rng(0)
    terminations = truncations = 0
    observed = []
    for t in range(steps):
        actions = policy(ref_obs, rng)
        ref_obs, ref_rew, ref_term, ref_trunc, info = ref.step(actions)
        out = env.step(torch.as_tensor(actions))
        ended = ref_term | ref_trunc
        np.testing.assert_array_equal(out.terminated.numpy(), ref_term, err_msg=f"step {t}")
        np.testing.assert_array_equal(out.truncated.numpy(), ref_trunc, err_msg=f"step {t}")
        np.testing.assert_allclose(out.reward.numpy(), ref_rew, atol=TOL, err_msg=f"step {t}")
        ref_final = np.stack([info["final_obs"][i] if ended[i] else ref_obs[i] for i in range(n)])
        np.testing.assert_allclose(out.final_obs.numpy(), ref_final, atol=TOL, err_msg=f"step {t}")
        np.testing.assert_allclose(out.obs.numpy()[~ended], ref_obs[~ended], atol=TOL)
        # the state itself too (e.g. Acrobot's angle wrapping is invisible in cos/sin)
        np.testing.assert_allclose(
            env.state.numpy()[~ended], _gym_states(ref).numpy()[~ended], atol=TOL
        )
        observed.append(out.final_obs.numpy())
        terminations += int(ref_term.sum())
        truncations += int(ref_trunc.sum())
        if ended.any() or (resync and t % resync == 0):
            state = env.state.clone()
            mask = torch.as_tensor(ended) if not (resync and t % resync == 0) else slice(None)
            state[mask] = _gym_states(ref)[mask]
            synced_obs = env.set_state(state, elapsed_steps=env.elapsed_steps)
            np.testing.assert_allclose(synced_obs.numpy(), ref_obs, atol=TOL)
    assert n * steps >= 2000
    assert truncations > 0
    assert terminations > 0 or env_id == "Pendulum-v1"  # Pendulum never terminates
    observed = np.concatenate(observed)
    if env_id.startswith("MountainCar"):  # the left wall was hit
        assert (observed[:, 0] == np.float64(-1.2)).any()
    if env_id == "Pendulum-v1":  # the speed limit was hit
        assert (np.abs(observed[:, 2]) == 8.0).any()
    if env_id == "Acrobot-v1":  # a link swung over the top, where angles get wrapped
        assert (observed[:, [0, 2]] < -0.99).any()


# One step from hand-made edge states (wrap boundaries, speed limits, walls, goals).
EDGE_STATES: dict[str, tuple[list[list[float]], list]] = {
    "CartPole-v1": (
        [
            [2.39, 1.0, 0.0, 0.0],
            [0.0, 0.0, -0.2, -1.0],
            [-2.3, -3.0, 0.1, 2.0],
            [0.0, 0.0, 0.0, 0.0],
        ],
        [1, 0, 0, 1],
    ),
    "Acrobot-v1": (
        [
            [3.1, 3.1, 12.0, 28.0],
            [-3.1, -3.1, -12.0, -28.0],
            [math.pi, 0.0, 0.0, 0.0],
            [0.05, -0.05, 20.0, -40.0],
        ],
        [2, 0, 1, 2],
    ),
    "MountainCar-v0": (
        [[-1.19, -0.07, 0, 0], [0.49, 0.05, 0, 0], [-1.2, 0.0, 0, 0], [0.0, 0.069, 0, 0]],
        [0, 2, 0, 2],
    ),
    "MountainCarContinuous-v0": (
        [[-1.19, -0.07, 0, 0], [0.44, 0.05, 0, 0], [-1.2, 0.0, 0, 0], [0.0, 0.069, 0, 0]],
        [[-5.0], [3.0], [-1.0], [0.5]],
    ),
    "Pendulum-v1": (
        [[math.pi, 7.9, 0, 0], [-math.pi, -7.9, 0, 0], [10.0, 0.0, 0, 0], [-7.0, 1.0, 0, 0]],
        [[5.0], [-5.0], [0.0], [-1.25]],
    ),
}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_edge_states_and_same_step_autoreset(env_id: str) -> None:
    rows, actions = EDGE_STATES[env_id]
    env = TORCH_ENVS[env_id](len(rows), dtype=torch.float64)
    states = torch.tensor(rows, dtype=torch.float64)[:, : env.state_dim]
    env.set_state(states)
    out = env.step(torch.as_tensor(actions))
    ends = 0
    for i, action in enumerate(actions):
        ref = gym.make(env_id)
        ref.reset(seed=0)
        ref.unwrapped.state = states[i].numpy().copy()
        ref_obs, ref_rew, ref_term, _, _ = ref.step(
            np.asarray(action, dtype=ref.action_space.dtype)
        )
        np.testing.assert_allclose(out.final_obs[i].numpy(), ref_obs, atol=TOL)
        assert out.reward[i].item() == pytest.approx(ref_rew, abs=TOL)
        assert bool(out.terminated[i]) == ref_term
        if ref_term:  # SAME_STEP: obs is already a fresh reset state, the counter restarted
            ends += 1
            assert not torch.allclose(out.obs[i], out.final_obs[i])
            assert _in_reset_range(env_id, env.state[i : i + 1]).all()
            assert env.elapsed_steps[i] == 0
        else:
            torch.testing.assert_close(out.obs[i], out.final_obs[i])
            np.testing.assert_allclose(env.state[i].numpy(), ref.unwrapped.state, atol=TOL)
    assert ends >= (0 if env_id == "Pendulum-v1" else 1)


def _in_reset_range(env_id: str, state: torch.Tensor) -> torch.Tensor:
    """Per-env bool: is ``state`` [N, state_dim] inside gymnasium's reset distribution?"""
    lo, hi = {
        "CartPole-v1": ([-0.05] * 4, [0.05] * 4),
        "Acrobot-v1": ([-0.1] * 4, [0.1] * 4),
        "MountainCar-v0": ([-0.6, 0.0], [-0.4, 0.0]),
        "MountainCarContinuous-v0": ([-0.6, 0.0], [-0.4, 0.0]),
        "Pendulum-v1": ([-math.pi, -1.0], [math.pi, 1.0]),
    }[env_id]
    lo_t, hi_t = torch.tensor(lo, dtype=state.dtype), torch.tensor(hi, dtype=state.dtype)
    return ((state >= lo_t) & (state <= hi_t)).all(1)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_distribution_matches_gymnasium_ranges(env_id: str) -> None:
    env = TORCH_ENVS[env_id](4000)
    obs = env.reset(seed=0)
    state = env.state
    assert _in_reset_range(env_id, state).all()
    # uniform over the whole range, not a point or a corner of it
    spread = state.amax(0) - state.amin(0)
    full_spread = {
        "CartPole-v1": [0.1] * 4,
        "Acrobot-v1": [0.2] * 4,
        "MountainCar-v0": [0.2, 0.0],
        "MountainCarContinuous-v0": [0.2, 0.0],
        "Pendulum-v1": [2 * math.pi, 2.0],
    }[env_id]
    assert spread.tolist() == pytest.approx(full_spread, rel=0.01)
    space = env.single_observation_space
    assert all(space.contains(o) for o in obs[:50].numpy())
    assert obs.shape == (4000, space.shape[0]) and obs.dtype == torch.float32
    # the reset states drawn by auto-reset inside step() follow the same distribution:
    # make every env hit its time limit in the next step
    env.set_state(env.state, elapsed_steps=env.max_episode_steps - 1)
    out = env.step(_random_actions(env, torch.Generator().manual_seed(1)))
    assert out.truncated.all()
    assert _in_reset_range(env_id, env.state).all()
    assert (env.state.amax(0) - env.state.amin(0)).tolist() == pytest.approx(
        spread.tolist(), abs=0.01
    )


def _random_actions(env: TorchVecEnv, gen: torch.Generator) -> torch.Tensor:
    space = env.single_action_space
    if isinstance(space, gym.spaces.Discrete):
        return torch.randint(0, int(space.n), (env.num_envs,), generator=gen)
    return (torch.rand(env.num_envs, 1, generator=gen) * 2 - 1) * float(space.high[0])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_truncation_at_gymnasium_time_limit(env_id: str) -> None:
    env = TORCH_ENVS[env_id](3)
    assert env.max_episode_steps == gym.spec(env_id).max_episode_steps
    env.reset(seed=0)
    state = env.state.clone()
    env.set_state(state, elapsed_steps=torch.tensor([0, env.max_episode_steps - 2, 0]))
    gen = torch.Generator().manual_seed(0)
    out = env.step(_random_actions(env, gen))
    assert not out.truncated.any()
    out = env.step(_random_actions(env, gen))
    assert out.truncated.tolist() == [False, True, False]
    assert env.elapsed_steps.tolist() == [2, 0, 2]
    assert not torch.equal(out.obs[1], out.final_obs[1])
    assert _in_reset_range(env_id, env.state[1:2]).all()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_contract(env_id: str) -> None:
    env = TORCH_ENVS[env_id](5)
    with pytest.raises(NprlError, match="reset"):
        env.step(_random_actions(env, torch.Generator()))
    obs = env.reset(seed=0)
    obs_dim = env.single_observation_space.shape[0]
    assert isinstance(env, VecEnv)
    assert obs.shape == (5, obs_dim)
    out = env.step(_random_actions(env, torch.Generator()))
    assert out.obs.shape == out.final_obs.shape == (5, obs_dim)
    assert out.obs.dtype == out.final_obs.dtype == out.reward.dtype == torch.float32
    assert out.reward.shape == out.terminated.shape == out.truncated.shape == (5,)
    assert out.terminated.dtype == out.truncated.dtype == torch.bool
    # observations are the caller's: writing into them does not change the env
    state = env.state.clone()
    out.obs.fill_(123.0)
    out.final_obs.add_(1.0)
    torch.testing.assert_close(env.state, state)
    with pytest.raises(NprlError, match="shape"):
        env.step(torch.zeros(4, dtype=torch.int64))


def _rollout(env: TorchVecEnv, seed: int, steps: int = 300) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    record = [env.reset(seed=seed)]
    for _ in range(steps):
        out = env.step(_random_actions(env, gen).to(env.device))
        record += [out.obs, out.reward, out.terminated, out.truncated, out.final_obs]
    return record


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MountainCar-v0", "Pendulum-v1"])
def test_same_seed_same_trajectories(env_id: str) -> None:
    first = _rollout(TORCH_ENVS[env_id](8), seed=3)
    again = _rollout(TORCH_ENVS[env_id](8), seed=3)
    other = _rollout(TORCH_ENVS[env_id](8), seed=4)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])
    # episodes ended during the rollout (so auto-reset draws were compared too)
    assert any(t.any() for t in first[3::5] + first[4::5])
    # reseeding the same instance replays the same trajectory
    env = TORCH_ENVS[env_id](8)
    _rollout(env, seed=11)
    assert all(torch.equal(a, b) for a, b in zip(_rollout(env, seed=3), first))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_env_indices_get_different_episodes(env_id: str) -> None:
    env = TORCH_ENVS[env_id](64)
    env.reset(seed=0)
    starts = [env.state.clone()]
    gen = torch.Generator().manual_seed(0)
    env.set_state(env.state, elapsed_steps=env.max_episode_steps - 1)  # all end next step
    env.step(_random_actions(env, gen))
    starts.append(env.state.clone())
    for s in starts:
        assert len(torch.unique(s[:, 0])) == 64  # no two envs start alike
    assert not torch.equal(starts[0], starts[1])  # nor repeat their previous episode


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_cuda_matches_cpu_and_is_reproducible(env_id: str) -> None:
    cpu = TORCH_ENVS[env_id](16, dtype=torch.float64)
    gpu = TORCH_ENVS[env_id](16, device="cuda", dtype=torch.float64)
    cpu.reset(seed=0)
    gpu.set_state(cpu.state, elapsed_steps=cpu.elapsed_steps)
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        actions = _random_actions(cpu, gen)
        a, b = cpu.step(actions), gpu.step(actions.cuda())
        torch.testing.assert_close(b.final_obs.cpu(), a.final_obs, atol=1e-9, rtol=0)
        torch.testing.assert_close(b.reward.cpu(), a.reward, atol=1e-9, rtol=0)
        assert torch.equal(b.terminated.cpu(), a.terminated)
        gpu.set_state(cpu.state, elapsed_steps=cpu.elapsed_steps)  # re-sync resets
    assert gpu.state.device.type == "cuda" and gpu.elapsed_steps.device.type == "cuda"
    first = _rollout(TORCH_ENVS[env_id](8, device="cuda"), seed=1, steps=100)
    again = _rollout(TORCH_ENVS[env_id](8, device="cuda"), seed=1, steps=100)
    assert all(torch.equal(a, b) for a, b in zip(first, again))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_env_auto_picks_torch_with_gymnasium_spaces(env_id: str) -> None:
    env = make_env(env_id, 2, backend="auto")
    assert type(env) is TORCH_ENVS[env_id]
    assert type(make_env(env_id, 2, backend="torch")) is TORCH_ENVS[env_id]
    assert isinstance(make_env(env_id, 2, backend="gymnasium"), GymVecEnv)
    ref = gym.make(env_id)
    assert env.single_observation_space == ref.observation_space
    assert env.single_action_space == ref.action_space


def test_make_vec_returns_a_same_step_gymnasium_vector_env() -> None:
    envs = make_vec("Pendulum-v1", 3, seed=0)
    assert isinstance(envs, gym.vector.VectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert envs.num_envs == 3
    assert envs.observation_space.shape == (3, 3) and envs.action_space.shape == (3, 1)
    assert envs.single_action_space == gym.make("Pendulum-v1").action_space
    obs, infos = envs.reset()
    assert isinstance(obs, torch.Tensor) and obs.shape == (3, 3) and infos == {}
    obs, reward, terminated, truncated, infos = envs.step(envs.action_space.sample())  # numpy
    assert obs.shape == (3, 3) and reward.shape == terminated.shape == truncated.shape == (3,)
    assert set(infos) == {"final_obs", "_final_obs"}
    for _ in range(199):  # Pendulum truncates at 200 steps
        obs, reward, terminated, truncated, infos = envs.step(torch.zeros(3, 1))  # torch
    assert truncated.all() and infos["_final_obs"].all()
    assert not torch.equal(infos["final_obs"], obs)
    # the seed makes the episodes reproducible
    again = make_vec("Pendulum-v1", 3, seed=0)
    torch.testing.assert_close(again.reset()[0], make_vec("Pendulum-v1", 3, seed=0).reset()[0])
    envs.close()


def test_make_vec_falls_back_to_gymnasium() -> None:
    envs = make_vec("FrozenLake-v1", 2, seed=0)
    assert isinstance(envs, gym.vector.SyncVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    envs.reset()
    envs.step(envs.action_space.sample())
    with pytest.raises(NprlError, match="CartPole-v1"):
        make_vec("CartPole-v9", 2)
