"""Scaling-law fits with bootstrap intervals: Kaplan, the offset form, Chinchilla, IsoFLOPs.

    kaplan      L(N) = (N_c / N)^a_N                      a line in log-log (Kaplan et al. 2020)
    offset      L(N) = E + A / N^alpha                   E: the irreducible loss
    chinchilla  L(N, D) = E + A / N^alpha + B / D^beta   Huber loss (delta 1e-3) on log L,
                                                         L-BFGS from a grid of starts
                                                         (Hoffmann et al. 2022, Approach 3)
    isoflop     per budget C, a parabola in log N through the IsoFLOP runs; its minimum is
                N_opt(C); then N_opt ~ C^a and D_opt ~ C^b (Approach 2)

Every fit returns a `Fit`: the point estimate from all points, and a 95% interval from
refitting on bootstrap resamples of the runs. The nonlinear fits need SciPy
(`pip install scipy`, or `pip install '.[fit]'` in the tinyllm checkout).

>>> N = np.array([1e3, 1e4, 1e5, 1e6]); L = 1.0 + 30 * N ** -0.4
>>> round(fit_offset(N, L, n_boot=0).params["E"], 3)
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._hints import install_hint
from .plan import StudyError

HUBER_DELTA = 1e-3
PUBLISHED = {  # for the notebook's comparison table
    "kaplan a_N": 0.076, "chinchilla alpha": 0.34, "chinchilla beta": 0.28,
    "chinchilla E": 1.69, "isoflop a (N_opt ~ C^a)": 0.50, "tokens per parameter": 20.0,
}


def _scipy_optimize():
    try:
        from scipy import optimize
    except ImportError:
        raise ImportError("the scaling-law fits need SciPy: "
                          + install_hint("scipy", "fit")) from None
    return optimize


@dataclass
class Fit:
    """A fitted law: `params` from all points, `intervals` (2.5th, 97.5th percentile) from
    `n_boot` bootstrap refits, `n_points` data points."""

    name: str
    formula: str
    params: dict[str, float]
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    n_points: int = 0
    n_boot: int = 0
    extra: dict = field(default_factory=dict)

    def predict(self, n, d=None) -> np.ndarray:
        """The law at parameters `n` (and tokens `d` for chinchilla)."""
        p, n = self.params, np.asarray(n, dtype=float)
        if self.name == "kaplan":
            return (p["N_c"] / n) ** p["a_N"]
        if self.name == "offset":
            return p["E"] + p["A"] * n ** -p["alpha"]
        if self.name == "chinchilla":
            d = np.asarray(d, dtype=float)
            return p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * d ** -p["beta"]
        if self.name == "frontier":
            return math.exp(p["log_k"]) * n ** p["a"]
        raise ValueError(f"Fit {self.name!r} has no prediction")

    def interval(self, key: str) -> str:
        lo, hi = self.intervals.get(key, (math.nan, math.nan))
        return f"{self.params[key]:.4g} [{lo:.4g}, {hi:.4g}]"

    def to_dict(self) -> dict:
        return {"name": self.name, "formula": self.formula, "params": self.params,
                "intervals": {k: list(v) for k, v in self.intervals.items()},
                "n_points": self.n_points, "n_boot": self.n_boot, "extra": self.extra}


def _check(name: str, *arrays, need: int = 3) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=float).ravel() for a in arrays]
    if len({len(a) for a in out}) != 1:
        raise StudyError(f"{name}: arrays of different lengths {[len(a) for a in out]}")
    ok = np.all([np.isfinite(a) & (a > 0) for a in out], axis=0)
    out = [a[ok] for a in out]
    if len(out[0]) < need or len(np.unique(out[0])) < need:
        raise StudyError(f"{name} needs at least {need} points with distinct, positive "
                         f"sizes; got {len(out[0])} ({len(np.unique(out[0]))} distinct)")
    return out


def _bootstrap(fit_once, arrays, n_boot: int, seed: int, need: int) -> list[dict]:
    """Refit on `n_boot` resamples (with replacement) of the points; skip degenerate ones."""
    rng = np.random.default_rng(seed)
    n, samples = len(arrays[0]), []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if len(np.unique(arrays[0][idx])) < need:
            continue
        try:
            samples.append(fit_once(*(a[idx] for a in arrays)))
        except (StudyError, ValueError, FloatingPointError, np.linalg.LinAlgError):
            continue
    return samples


def _intervals(samples: list[dict], keys) -> dict[str, tuple[float, float]]:
    out = {}
    for k in keys:
        vals = np.array([s[k] for s in samples if np.isfinite(s[k])])
        if len(vals):
            out[k] = (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5)))
    return out


# ---------------------------------------------------------------------- Kaplan: a line in log-log
def _kaplan_once(n, loss) -> dict:
    slope, intercept = np.polyfit(np.log(n), np.log(loss), 1)
    a = -slope
    return {"a_N": float(a), "N_c": float(math.exp(intercept / a)) if a > 0 else math.nan}


def fit_kaplan(n, loss, n_boot: int = 200, seed: int = 0) -> Fit:
    """L(N) = (N_c / N)^a_N by least squares on log L vs log N."""
    n, loss = _check("fit_kaplan", n, loss, need=2)
    params = _kaplan_once(n, loss)
    samples = _bootstrap(_kaplan_once, (n, loss), n_boot, seed, need=2)
    return Fit("kaplan", "L(N) = (N_c / N)^a_N", params, _intervals(samples, params),
               len(n), len(samples))


# ---------------------------------------------------------------------- E + A / N^alpha
def _offset_once(n, loss, starts=None) -> dict:
    optimize = _scipy_optimize()
    logn, logl = np.log(n), np.log(loss)

    def residuals(theta):
        e, log_a, alpha = theta
        return np.logaddexp(e, log_a - alpha * logn) - logl

    if starts is None:
        starts = []
        for e_frac in (0.3, 0.7, 0.95):
            for alpha in (0.1, 0.3, 0.7, 1.5):
                # A from the smallest model: L - E = A N^-alpha there
                log_a0 = (math.log(max(loss.max() - e_frac * loss.min(), 1e-6))
                          + alpha * logn.min())
                starts.append((math.log(e_frac * loss.min()), log_a0, alpha))
    best = None
    for x0 in starts:
        res = optimize.least_squares(residuals, x0, bounds=([-20, -50, 1e-4], [5, 80, 5]))
        if best is None or res.cost < best.cost:
            best = res
    e, log_a, alpha = best.x
    return {"E": float(math.exp(e)), "A": float(math.exp(log_a)), "alpha": float(alpha),
            "_theta": tuple(best.x)}


def fit_offset(n, loss, n_boot: int = 200, seed: int = 0) -> Fit:
    """L(N) = E + A / N^alpha by least squares on log L (E >= 0)."""
    n, loss = _check("fit_offset", n, loss, need=4)
    params = _offset_once(n, loss)
    theta = params.pop("_theta")
    starts = [theta, (math.log(0.5 * loss.min()), theta[1], theta[2])]

    def once(*arrays):
        p = _offset_once(*arrays, starts=starts)
        p.pop("_theta")
        return p

    samples = _bootstrap(once, (n, loss), n_boot, seed, need=4)
    return Fit("offset", "L(N) = E + A / N^alpha", params, _intervals(samples, params),
               len(n), len(samples))


# ---------------------------------------------------------------------- Chinchilla L(N, D)
def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss of residuals r and its derivative."""
    small = np.abs(r) <= delta
    value = np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
    return value, np.where(small, r, delta * np.sign(r))


def _chinchilla_objective(theta, logn, logd, logl, delta):
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * logn, b - beta * logd, np.full_like(logn, e)])  # (3, P)
    lse = np.logaddexp.reduce(terms, axis=0)                                      # (P,)
    w = np.exp(terms - lse)                                                       # (3, P)
    value, dr = _huber(lse - logl, delta)
    grad = np.array([(dr * w[0]).sum(), (dr * w[1]).sum(), (dr * w[2]).sum(),
                     -(dr * w[0] * logn).sum(), -(dr * w[1] * logd).sum()])
    return value.sum(), grad


#: Hoffmann et al.'s grid of starting points (a and b: log A and log B; e: log E).
CHINCHILLA_GRID = {"alpha": (0.0, 0.25, 0.5, 1.0, 2.0), "beta": (0.0, 0.25, 0.5, 1.0, 2.0),
                   "e": (-1.0, -0.5, 0.0, 0.5, 1.0), "a": (0.0, 3.0, 6.0, 10.0, 15.0, 25.0),
                   "b": (0.0, 3.0, 6.0, 10.0, 15.0, 25.0)}
GRID_STARTS = 8


def _grid_objective(grid: np.ndarray, logn, logd, logl, delta) -> np.ndarray:
    """The Huber objective at every row (a, b, e, alpha, beta) of `grid` at once."""
    a, b, e, alpha, beta = (grid[:, i:i + 1] for i in range(5))              # (G, 1)
    lse = np.logaddexp(np.logaddexp(a - alpha * logn, b - beta * logd), e)  # (G, P)
    return _huber(lse - logl, delta)[0].sum(axis=1)


def _linear_scan_starts(n, d, loss, optimize, keep: int = 4) -> list[tuple]:
    """For fixed exponents the law is linear in (E, A, B) >= 0: solve that by non-negative
    least squares over a grid of (alpha, beta) and return the best few as starting points."""
    found = []
    for alpha in np.linspace(0.02, 1.5, 25):
        for beta in np.linspace(0.02, 1.5, 25):
            X = np.stack([np.ones_like(n), n ** -alpha, d ** -beta], axis=1) / loss[:, None]
            coef, rnorm = optimize.nnls(X, np.ones_like(loss))   # relative residuals
            found.append((rnorm, alpha, beta, coef))
    found.sort(key=lambda f: f[0])
    return [(math.log(max(c[1], 1e-9)), math.log(max(c[2], 1e-9)), math.log(max(c[0], 1e-3)),
             al, be) for _, al, be, c in found[:keep]]


def _chinchilla_once(n, d, loss, starts=None, delta=HUBER_DELTA) -> dict:
    optimize = _scipy_optimize()
    logn, logd, logl = np.log(n), np.log(d), np.log(loss)
    if starts is None:
        g = CHINCHILLA_GRID
        grid = [(a, b, e, al, be) for a in g["a"] for b in g["b"] for e in g["e"]
                for al in g["alpha"] for be in g["beta"]]
        # The grid is cheap to score and L-BFGS is not: start from its best points only,
        # and from the best exponents of a linear least-squares scan (below).
        scores = _grid_objective(np.array(grid), logn, logd, logl, delta)
        starts = [grid[i] for i in np.argsort(scores)[:GRID_STARTS]]
        starts += _linear_scan_starts(n, d, loss, optimize)
    best = None
    for x0 in starts:
        res = optimize.minimize(_chinchilla_objective, x0, args=(logn, logd, logl, delta),
                                jac=True, method="L-BFGS-B",
                                bounds=[(-30, 60), (-30, 60), (-10, 5), (0, 5), (0, 5)])
        if best is None or res.fun < best.fun:
            best = res
    a, b, e, alpha, beta = best.x
    return {"E": float(math.exp(e)), "A": float(math.exp(a)), "B": float(math.exp(b)),
            "alpha": float(alpha), "beta": float(beta), "_theta": tuple(best.x)}


def fit_chinchilla(n, d, loss, n_boot: int = 100, seed: int = 0,
                   delta: float = HUBER_DELTA) -> Fit:
    """L(N, D) = E + A / N^alpha + B / D^beta, as Hoffmann et al.: minimise the Huber loss
    of log L's residuals (in log space, so every point counts alike), L-BFGS from a grid of
    starting points. Bootstrap refits start from the full fit's optimum and a few others."""
    n, d, loss = _check("fit_chinchilla", n, d, loss, need=3)
    params = _chinchilla_once(n, d, loss, delta=delta)
    theta = params.pop("_theta")
    starts = [theta, (theta[0], theta[1], -0.5, 0.5, 0.5), (5.0, 5.0, 0.0, 0.3, 0.3)]

    def once(*arrays):
        p = _chinchilla_once(*arrays, starts=starts, delta=delta)
        p.pop("_theta")
        return p

    samples = _bootstrap(once, (n, d, loss), n_boot, seed, need=3)
    fit = Fit("chinchilla", "L(N, D) = E + A / N^alpha + B / D^beta", params,
              _intervals(samples, params), len(n), len(samples))
    a, b = params["alpha"], params["beta"]
    if a + b > 0:
        # Compute-optimal allocation implied by the fit (Hoffmann et al. eq. 4): N_opt ~ C^a,
        # a = beta / (alpha + beta).
        fit.extra["N_opt exponent beta/(alpha+beta)"] = b / (a + b)
    return fit


# ---------------------------------------------------------------------- IsoFLOP minima
def _parabola_minimum(logn, loss, logd) -> tuple[float, float, float]:
    c2, c1, c0 = np.polyfit(logn, loss, 2)
    if c2 <= 0:
        raise StudyError("IsoFLOP curve is not convex (no minimum inside the runs)")
    x = -c1 / (2 * c2)
    slope, intercept = np.polyfit(logn, logd, 1)
    return x, float(c0 + c1 * x + c2 * x * x), float(intercept + slope * x)


def _isoflop_once(groups) -> dict:
    minima = []
    for c, (logn, loss, logd) in groups.items():
        try:
            x, lo, yd = _parabola_minimum(logn, loss, logd)
        except StudyError:
            continue
        minima.append((math.log(c), x, yd, lo, bool(logn.min() <= x <= logn.max())))
    # A minimum outside the sizes trained is an extrapolation: use only the inside ones
    # when there are two or more.
    inside = [m for m in minima if m[4]]
    used = inside if len(inside) >= 2 else minima
    if len(used) < 2:
        raise StudyError("fewer than 2 IsoFLOP curves have a minimum (none is convex)")
    log_c, log_n, log_d, l_opt, _ = (list(v) for v in zip(*used))
    a, log_k = np.polyfit(log_c, log_n, 1)
    b, _ = np.polyfit(log_c, log_d, 1)
    return {"a": float(a), "log_k": float(log_k), "b": float(b),
            "tokens_per_param": float(np.mean(np.exp(np.array(log_d) - np.array(log_n)))),
            "_minima": minima}


def fit_isoflop(budgets, n, tokens, loss, n_boot: int = 200, seed: int = 0) -> Fit:
    """Chinchilla's Approach 2: for each compute budget a parabola of loss in log N; its
    minimum is N_opt(C) (and D_opt(C) read off the runs' log D vs log N line). Then
    N_opt = k C^a and D_opt ~ C^b by least squares in log-log, over the minima that fall
    inside the sizes trained (all of them if fewer than two do)."""
    budgets, n, tokens, loss = (np.asarray(x, dtype=float) for x in (budgets, n, tokens, loss))
    groups = {}
    for c in np.unique(budgets[np.isfinite(budgets)]):
        m = budgets == c
        if len(np.unique(n[m])) >= 3:
            groups[float(c)] = (np.log(n[m]), loss[m], np.log(tokens[m]))
    if len(groups) < 2:
        raise StudyError(f"fit_isoflop needs at least 2 compute budgets with 3 or more sizes "
                         f"each; got {len(groups)}")
    params = _isoflop_once(groups)
    minima = params.pop("_minima")
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        resampled = {}
        for c, (logn, lv, logd) in groups.items():
            idx = rng.integers(0, len(logn), len(logn))
            resampled[c] = (logn[idx], lv[idx], logd[idx])
        if any(len(np.unique(g[0])) < 3 for g in resampled.values()):
            continue
        try:
            s = _isoflop_once(resampled)
        except (StudyError, np.linalg.LinAlgError, ValueError):
            continue
        s.pop("_minima")
        samples.append(s)
    fit = Fit("frontier", "N_opt(C) = k C^a,  D_opt(C) ~ C^b", params,
              _intervals(samples, params), int(sum(len(g[0]) for g in groups.values())),
              len(samples))
    fit.extra["minima"] = [{"flops": math.exp(c), "N_opt": math.exp(x), "D_opt": math.exp(y),
                            "loss_opt": lo, "inside": inside}
                           for c, x, y, lo, inside in minima]
    return fit


# ---------------------------------------------------------------------- a whole study
def fit_study(results, corpus: str, n_boot: int = 200, seed: int = 0,
              n_column: str = "non_embedding_params", use_curves: bool = True) -> dict:
    """Every fit of one corpus of a `Results`: {"kaplan", "offset", "chinchilla", "frontier"}
    (a fit whose data are missing or degenerate is left out, with the reason in "skipped")."""
    out, skipped = {}, {}
    n = results.column("size", n_column, corpus)
    loss = results.column("size", "val_loss_nats", corpus)
    for name, fn in (("kaplan", fit_kaplan), ("offset", fit_offset)):
        try:
            out[name] = fn(n, loss, n_boot=n_boot, seed=seed)
        except (StudyError, ImportError) as exc:
            skipped[name] = str(exc)
    nn, dd, ll = chinchilla_points(results, corpus, n_column, use_curves)
    try:
        out["chinchilla"] = fit_chinchilla(nn, dd, ll, n_boot=max(n_boot // 2, 0), seed=seed)
    except (StudyError, ImportError) as exc:
        skipped["chinchilla"] = str(exc)
    try:
        out["frontier"] = fit_isoflop(results.column("isoflop", "flops_budget", corpus),
                                      results.column("isoflop", n_column, corpus),
                                      results.column("isoflop", "tokens", corpus),
                                      results.column("isoflop", "val_loss_nats", corpus),
                                      n_boot=n_boot, seed=seed)
    except (StudyError, ImportError) as exc:
        skipped["frontier"] = str(exc)
    out["skipped"] = skipped
    floor, window = results.entropy_rate(corpus), results.window_floor(corpus)
    for name in ("offset", "chinchilla"):
        if name in out and floor:
            out[name].extra["E / entropy rate"] = out[name].params["E"] / floor
        if name in out and window:
            out[name].extra["E / window floor"] = out[name].params["E"] / window
    return out


def chinchilla_points(results, corpus: str, n_column: str = "non_embedding_params",
                      use_curves: bool = True):
    """(N, D, L) for the L(N, D) fit: every IsoFLOP run's final loss, and either the logged
    evaluations of the size sweep's second halves (use_curves) or only its final losses."""
    n = list(results.column("isoflop", n_column, corpus))
    d = list(results.column("isoflop", "tokens", corpus))
    loss = list(results.column("isoflop", "val_loss_nats", corpus))
    if use_curves:
        size_ids = {r["run_id"]: r for r in results.rows("size", corpus)}
        for r in results.rows("curves", corpus):
            run = size_ids.get(r["run_id"])
            if run is None or r["step"] < run["steps"] // 2:
                # Early in a cosine schedule the learning rate is still high: such a point
                # is not what a run trained to that many tokens would reach.
                continue
            n.append(r[n_column])
            d.append(r["tokens"])
            loss.append(r["val_loss_nats"])
    else:
        n += list(results.column("size", n_column, corpus))
        d += list(results.column("size", "tokens", corpus))
        loss += list(results.column("size", "val_loss_nats", corpus))
    return np.array(n, float), np.array(d, float), np.array(loss, float)


def fits_to_json(fits: dict[str, dict]) -> dict:
    """{corpus: {fit name: Fit.to_dict()}} for fits.json."""
    return {corpus: {k: (v.to_dict() if isinstance(v, Fit) else v) for k, v in f.items()}
            for corpus, f in fits.items()}
