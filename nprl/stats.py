"""Statistics over seeds: bootstrap confidence intervals, time to threshold, curves on a grid.

Pure numpy, no I/O: ``nprl compare`` and ``nprl plot`` summarise runs with these, and the
tests check them against hand-made cases. Every random draw uses a fixed-seed generator,
so the same runs always give the same summary (``nprl plot`` reproduces ``summary.csv``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000
RNG_SEED = 0


def bootstrap_ci(values: Sequence[float], confidence: float = CONFIDENCE,
                 resamples: int = RESAMPLES, seed: int = RNG_SEED) -> tuple[float, float]:
    """Percentile-bootstrap interval for the mean of ``values`` (one value per seed).

    Resamples the seeds with replacement ``resamples`` times and returns the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means.
    With 5 seeds this is a rough interval (it can only be as wide as the seeds' spread),
    but it is honest about how few seeds there are. Identical values give a zero-width
    interval; no values give (nan, nan).
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    means = _resampled_means(x[:, None], resamples, seed)[:, 0]
    return _quantiles(means, confidence)


def median_ratio_ci(num: Sequence[float], den: Sequence[float],
                    confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                    seed: int = RNG_SEED) -> tuple[float, float, float]:
    """median(num) / median(den) and its percentile-bootstrap interval, for two
    measurements of the same seeds (e.g. seconds to a threshold on two backends).

    The seeds are resampled in pairs, so what the seeds share (an easy or a hard seed)
    cancels and only what differs between the two columns widens the interval. Values may
    be inf (a seed that never reached the threshold); a ratio with an infinite median is
    inf or 0.
    """
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"expected two equal, non-empty lists of values per seed, "
                         f"got {a.size} and {b.size}")
    idx = _resample_indices(a.size, resamples, seed)
    with np.errstate(all="ignore"):
        ratios = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)
        point = float(np.median(a) / np.median(b))
    # (no interpolation between order statistics: an inf neighbour would make it nan)
    return (point, *_quantiles(ratios, confidence, method="inverted_cdf"))


def bootstrap_band(curves: np.ndarray, confidence: float = CONFIDENCE,
                   resamples: int = 2_000, seed: int = RNG_SEED
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and bootstrap interval of the mean, per column, of ``curves`` [seeds, points].

    NaN marks a point where a seed has no value (before its first evaluation); such
    points are averaged over the seeds that have one, and stay NaN where none has.
    The same seed indices are drawn for every column, so the band is a smooth curve.
    """
    c = np.asarray(curves, dtype=float)
    with np.errstate(all="ignore"), _no_nan_warnings():
        mean = np.nanmean(c, axis=0)
        if c.shape[0] == 0:
            nan = np.full(c.shape[1], np.nan)
            return nan, nan, nan
        means = _resampled_means(c, resamples, seed)  # [resamples, points]
        low = np.nanquantile(means, (1 - confidence) / 2, axis=0)
        high = np.nanquantile(means, (1 + confidence) / 2, axis=0)
    return mean, low, high


def time_to_threshold(xs: Sequence[float], ys: Sequence[float],
                      threshold: float | None) -> float | None:
    """The first ``x`` (env steps or seconds) whose evaluation ``y`` is ≥ ``threshold``.

    The same rule the trainer uses for ``solved_step``: the first evaluation that reaches
    the threshold, no interpolation between evaluations. None when the curve never
    reaches it or there is no threshold.
    """
    if threshold is None:
        return None
    for x, y in zip(xs, ys):
        if y >= threshold:
            return float(x)
    return None


def interpolate(xs: Sequence[float], ys: Sequence[float], grid: np.ndarray) -> np.ndarray:
    """``ys`` measured at increasing ``xs``, read off at ``grid`` points.

    Linear between evaluations; NaN before the first one (nothing was measured yet); the
    last value held after the last one, because a run that ended (budget spent, or
    stopped when solved) keeps the policy it finished with.
    """
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    g = np.asarray(grid, dtype=float)
    if x.size == 0:
        return np.full(g.shape, np.nan)
    out = np.interp(g, x, y)
    out[g < x[0]] = np.nan
    return out


def spread(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """(median, min, max) of ``values``, or (None, None, None) when there are none."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    if x.size == 0:
        return None, None, None
    return float(np.median(x)), float(x.min()), float(x.max())


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value; nan for none)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def _resampled_means(x: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means over rows of ``x`` [n, points] for ``resamples`` draws of n rows with
    replacement (NaN-aware), one generator with a fixed seed."""
    idx = _resample_indices(x.shape[0], resamples, seed)
    with np.errstate(all="ignore"), _no_nan_warnings():
        return np.nanmean(x[idx], axis=1)


def _resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n] draws of n indices with replacement, one fixed-seed generator."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _quantiles(values: np.ndarray, confidence: float, method: str = "linear"
               ) -> tuple[float, float]:
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2],
                            method=method)
    return float(low), float(high)


@contextmanager
def _no_nan_warnings() -> Iterator[None]:
    """Silence 'Mean of empty slice' (all-NaN columns are expected before the first
    evaluation of every seed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield
