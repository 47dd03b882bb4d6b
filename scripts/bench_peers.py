"""nprl TRPO/PPO against sb3-contrib TRPO and Stable-Baselines3 PPO, tuned by the zoo.

The same tasks, seeds, env-step budget and evaluation as ``scripts/benchmark.py``
(deterministic, the preset's ``eval_episodes`` episodes every ``eval_every`` env steps,
right after an update, plus one at the end), all in one process pool, so both libraries
are timed on the same machine under the same load. The peers log the same TensorBoard
tags as nprl (``eval/mean_reward``, ``time/elapsed``, the ``config`` text), so the usual
summary, curves and ``nprl plot`` work on them. Writes ``peers.md``: final return and
time to threshold per library, and the ratios nprl / peer (below 1: nprl needs less).

Needs the ``peers`` extra: ``pip install -e ".[peers]"``.

    python scripts/bench_peers.py                                     # 5 tasks × 5 seeds
    python scripts/bench_peers.py --envs CartPole-v1 --seeds 1 --steps 2048   # smoke test
    python scripts/bench_peers.py --from runs/peers/peers-<stamp>     # table from old runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's nprl and presets, whatever is installed

from nprl.compare import execute, make_jobs, new_dir, summarise_dirs, validate  # noqa: E402
from nprl.errors import NprlError  # noqa: E402
from nprl.summary_md import markdown_table  # noqa: E402
from nprl.workers import Job  # noqa: E402

TASKS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
         "Pendulum-v1"]
PAIRS = {"trpo": "sb3-trpo", "ppo": "sb3-ppo"}

# rl-baselines3-zoo (github.com/DLR-RM/rl-baselines3-zoo), hyperparams/trpo.yml and
# hyperparams/ppo.yml, the entries for these five tasks, copied as they are on the zoo's
# master branch (read from the repository files; unchanged across the 2023-2025
# versions). "normalize: true" is VecNormalize (observations and rewards, with the
# algorithm's gamma); "lin_x" is a schedule falling linearly from x to 0; n_timesteps is
# the zoo's budget, used only with --budget zoo.
ZOO: dict[str, dict[str, dict]] = {
    "trpo": {
        "CartPole-v1": dict(n_envs=2, n_timesteps=1e5, n_steps=512, batch_size=512,
                            cg_damping=1e-3, gae_lambda=0.98, gamma=0.99, learning_rate=1e-3,
                            n_critic_updates=20),
        "Pendulum-v1": dict(n_envs=2, n_timesteps=1e5, n_steps=1024, gamma=0.9,
                            n_critic_updates=15, use_sde=True, sde_sample_freq=4),
        "Acrobot-v1": dict(normalize=True, n_envs=2, n_timesteps=1e5, n_steps=1024),
        "MountainCar-v0": dict(normalize=True, n_envs=2, n_timesteps=1e5, n_steps=1024,
                               n_critic_updates=20),
        "MountainCarContinuous-v0": dict(normalize=True, n_envs=2, n_timesteps=5e4,
                                         use_sde=True, sde_sample_freq=4),
    },
    "ppo": {
        "CartPole-v1": dict(n_envs=8, n_timesteps=1e5, n_steps=32, batch_size=256,
                            gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
                            learning_rate="lin_0.001", clip_range="lin_0.2"),
        "Pendulum-v1": dict(n_envs=4, n_timesteps=1e5, n_steps=1024, gae_lambda=0.95,
                            gamma=0.9, n_epochs=10, ent_coef=0.0, learning_rate=1e-3,
                            clip_range=0.2, use_sde=True, sde_sample_freq=4),
        "Acrobot-v1": dict(normalize=True, n_envs=16, n_timesteps=1e6, n_steps=256,
                           gae_lambda=0.94, gamma=0.99, n_epochs=4, ent_coef=0.0),
        "MountainCar-v0": dict(normalize=True, n_envs=16, n_timesteps=1e6, n_steps=16,
                               gae_lambda=0.98, gamma=0.99, n_epochs=4, ent_coef=0.0),
        "MountainCarContinuous-v0": dict(
            normalize=True, n_envs=1, n_timesteps=20000, batch_size=256, n_steps=8,
            gamma=0.9999, learning_rate=7.77e-05, ent_coef=0.00429, clip_range=0.1,
            n_epochs=10, gae_lambda=0.9, max_grad_norm=5, vf_coef=0.19, use_sde=True,
            policy_kwargs=dict(log_std_init=-3.29, ortho_init=False)),
    },
}


def peer_jobs(envs: list[str], seeds: list[int], steps: int | None, budget: str,
              out: Path, algos: list[str]) -> list[Job]:
    """sb3 jobs with nprl's evaluation protocol (from the env presets) in ``overrides``."""
    jobs = []
    for env in envs:
        cfg = validate(["trpo"], env, seeds, steps)["trpo"].run  # the task's preset
        for algo in algos:
            zoo = ZOO[algo].get(env)
            if zoo is None:
                raise NprlError(f"no rl-baselines3-zoo entry for {algo} on {env}")
            total = steps or (int(zoo["n_timesteps"]) if budget == "zoo" else cfg.steps)
            protocol = {"eval_every": cfg.eval_every, "eval_episodes": cfg.eval_episodes}
            jobs += [Job(f"{env}/{PAIRS[algo]}/seed{seed}", PAIRS[algo], env, seed, str(out),
                         total, protocol, total, cfg.solved_threshold, train_peer)
                     for seed in seeds]
    return jobs


def train_peer(job: Job, report) -> None:
    """Worker side: train one sb3 model, evaluating like nprl's trainer, logging its tags."""
    from peer_runner import train_sb3  # scripts/peer_runner.py, beside this file

    train_sb3(job, report, ZOO[job.agent.removeprefix("sb3-")][job.env_id])


def ratio_table(summary: list, envs: list[str]) -> str:
    """Markdown: per task and pair, final return and time to threshold, nprl / peer."""
    rows = {(s.env, s.agent): s for s in summary}
    head = ["task", "nprl / peer", "final return nprl", "final return peer", "solved nprl",
            "solved peer", "env steps to threshold nprl / peer", "seconds to threshold "
            "nprl / peer", "env steps/s nprl / peer"]
    body = []
    for env in envs:
        for ours, peer in PAIRS.items():
            a, b = rows.get((env, ours)), rows.get((env, peer))
            if a is None or b is None:
                continue
            body.append([env, f"{ours} / {peer}", _final(a), _final(b), f"{a.solved}/{a.ok}",
                         f"{b.solved}/{b.ok}",
                         _ratio(a.steps_to_threshold_median, b.steps_to_threshold_median, 0),
                         _ratio(a.seconds_to_threshold_median, b.seconds_to_threshold_median, 1),
                         _ratio(a.steps_per_second, b.steps_per_second, 0)])
    note = ("Time to threshold: median over the seeds that reached it (see `solved`); a "
            "ratio below 1 means nprl needs less (for env steps/s, above 1 means nprl is "
            "faster). Final return: mean ± std over seeds. The peers run the zoo's "
            "hyperparameters with nprl's env-step budget (the zoo's with --budget zoo).")
    return note + "\n\n" + markdown_table(head, body) + "\n"


def _final(s) -> str:
    from nprl.summary_md import num

    return f"{num(s.final_mean)} ± {num(s.final_std)}" if s.ok else "–"


def _ratio(ours: float | None, peer: float | None, digits: int) -> str:
    from nprl.summary_md import num

    if ours is None or peer is None:
        return f"{num(ours, digits)} / {num(peer, digits)}"
    return f"{num(ours, digits)} / {num(peer, digits)} = **{ours / peer:.2f}**"


def provenance(out: Path) -> str:
    """The command and the machine, from the run directory's ``compare.json``."""
    import json

    manifest = json.loads((out / "compare.json").read_text())
    m = manifest.get("machine", {})
    return (f"Command: `{manifest.get('command', '?')}` (seeds {manifest.get('seeds')}), "
            f"started {manifest.get('started', '?')} on {m.get('cpu', '?')}, "
            f"{manifest.get('workers', '?')} workers, torch {m.get('torch', '?')}, "
            f"load average {m.get('load_average', '?')} at the start. Both libraries ran "
            "in the same process pool, one single-threaded run per core.\n\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=TASKS)
    parser.add_argument("--algos", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, help="override every budget (smoke tests)")
    parser.add_argument("--budget", choices=("preset", "zoo"), default="preset",
                        help="peers' budget: nprl's env preset (same as nprl) or the zoo's")
    parser.add_argument("--workers", type=int, help="default: one per core")
    parser.add_argument("--logdir", default=str(ROOT / "runs"))
    parser.add_argument("--from", dest="from_dir", help="only redo the table of this dir")
    parser.add_argument("--out", help="also copy peers.md here (e.g. docs/peers.md)")
    args = parser.parse_args()
    try:
        import sb3_contrib  # noqa: F401
        import stable_baselines3  # noqa: F401
    except ImportError:
        print("bench_peers: needs stable-baselines3 and sb3-contrib: pip install -e '.[peers]'",
              file=sys.stderr)
        return 2
    try:
        if args.from_dir:
            out = Path(args.from_dir)
            summary, _ = summarise_dirs([out], out)
        else:
            if args.seeds < 1:
                raise NprlError(f"--seeds {args.seeds}: expected a positive integer")
            seeds = list(range(args.seeds))
            out = new_dir(Path(args.logdir) / "peers", "peers")
            jobs = []
            for env in args.envs:
                configs = validate(args.algos, env, seeds, args.steps)
                jobs += make_jobs(configs, seeds, out, args.steps, {}, prefix=f"{env}/")
            jobs += peer_jobs(args.envs, seeds, args.steps, args.budget, out, args.algos)
            jobs.sort(key=lambda j: -j.total_steps)
            result = execute(jobs, out, args.workers, None, {
                "envs": args.envs, "seeds": seeds, "steps": args.steps, "budget": args.budget,
                "command": "python scripts/bench_peers.py " + " ".join(sys.argv[1:])})
            summary = result.summary
    except NprlError as e:
        print(f"bench_peers: error: {e}", file=sys.stderr)
        return 2
    text = "# nprl vs Stable-Baselines3 (rl-baselines3-zoo hyperparameters)\n\n" + \
        provenance(out) + ratio_table(summary, args.envs)
    (out / "peers.md").write_text(text)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    print(f"runs, summary.md and curves: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
