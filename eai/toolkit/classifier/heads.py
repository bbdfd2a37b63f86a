"""Linear heads on standardised clip features, with hyperparameters chosen by inner CV.

Training rows are views of source clips (the clip, its mirror image, time-warped copies); every
head is scored on the views a test clip is seen through (`tta` rows: the clip and its mirror),
averaging a clip's scores over them. Inner folds split source clips, never views, so an augmented
copy of a validation clip is never trained on. A head predicts with plain arrays (weights,
intercept, standardisation), so a saved head needs neither scikit-learn nor pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Rows:
    """Training rows: x (n, F) features, y (n,) labels, group (n,) source clip, tta (n,) bool;
    domain (n,) the dataset of each row, or None (one domain)."""

    x: np.ndarray
    y: np.ndarray
    group: np.ndarray
    tta: np.ndarray
    domain: np.ndarray | None = None

    def domains(self) -> list[str]:
        """The datasets when there are several (then heads get per-dataset deviations)."""
        if self.domain is None:
            return []
        names = sorted(set(self.domain.tolist()))
        return names if len(names) > 1 else []


@dataclass
class LinearHead:
    """scores = ((x - mean) / std, NaN -> 0) @ coef.T + intercept, times `scale`."""

    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray  # (C, F)
    intercept: np.ndarray  # (C,)
    scale: float = 1.0

    def __post_init__(self) -> None:  # one dtype and layout, so a loaded head is bit-identical
        for name in ("mean", "std", "coef", "intercept"):
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float64))

    def scores(self, x: np.ndarray, domain: np.ndarray | None = None) -> np.ndarray:
        """domain (the rows' datasets) is for DomainHead's signature; one head ignores it."""
        z = standardise(x, self.mean, self.std)
        return self.scale * (z @ self.coef.T + self.intercept)

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.mean": self.mean, f"{prefix}.std": self.std,
                f"{prefix}.coef": self.coef, f"{prefix}.intercept": self.intercept,
                f"{prefix}.scale": np.array([self.scale])}

    @classmethod
    def from_state(cls, s: dict[str, np.ndarray], prefix: str) -> LinearHead:
        return cls(s[f"{prefix}.mean"], s[f"{prefix}.std"], s[f"{prefix}.coef"],
                   s[f"{prefix}.intercept"], float(s[f"{prefix}.scale"][0]))


@dataclass
class DomainHead:
    """A head trained on several datasets: one LinearHead per dataset (the shared weights plus
    that dataset's deviation) and the shared one for clips of other datasets. See
    `_domain_design` for why."""

    shared: LinearHead
    by_domain: dict[str, LinearHead]

    def scores(self, x: np.ndarray, domain: np.ndarray | None = None) -> np.ndarray:
        out = self.shared.scores(x)
        if domain is not None:
            for name, head in self.by_domain.items():
                rows = domain == name
                if rows.any():
                    out[rows] = head.scores(x[rows])
        return out


def _domain_design(z: np.ndarray, domain: np.ndarray, names: list[str]) -> np.ndarray:
    """Shared and per-dataset copies of standardised features, plus a per-dataset bias column:
    [z, z * [d == d1], ..., z * [d == dk], [d == d1], ..., [d == dk]] ("frustratingly easy"
    domain adaptation, Daume III 2007). Under one L2 penalty a linear model then puts what the
    datasets agree on in the shared weights and what one dataset does differently (its labels'
    base rates, a synthetic set's rules, another capture setup) in that dataset's own copy,
    so a small or synthetic dataset cannot drag the weights another dataset is scored with."""
    onehot = np.stack([domain == n for n in names], axis=1).astype(np.float64)
    return np.hstack([z] + [z * onehot[:, [i]] for i in range(len(names))] + [onehot])


def _split_domain_coef(coef: np.ndarray, intercept: np.ndarray, names: list[str], width: int
                       ) -> tuple[tuple[np.ndarray, np.ndarray], dict[str, tuple]]:
    """(shared (coef, intercept), {dataset: (coef, intercept)}) from a _domain_design fit."""
    k = len(names)
    shared = coef[:, :width]
    bias = coef[:, (k + 1) * width:]
    per = {n: (shared + coef[:, (i + 1) * width:(i + 2) * width], intercept + bias[:, i])
           for i, n in enumerate(names)}
    return (shared, intercept), per


# A dataset gets feature statistics and hyperparameters of its own when it has at least this
# many training clips; a smaller one (a handful of fixture clips) takes those of all clips.
MIN_DOMAIN_CLIPS = 10


def _standardised(x: np.ndarray, domain: np.ndarray | None, names: list[str],
                  group: np.ndarray) -> tuple[np.ndarray, tuple, dict[str, tuple]]:
    """(z, pooled (mean, std), {dataset: (mean, std)}): each row standardised with its own
    dataset's statistics when that dataset has MIN_DOMAIN_CLIPS clips or more (label-free;
    datasets recorded or synthesised differently then share one origin and scale, and a big
    dataset's features keep the geometry they have when it is trained alone), else with the
    statistics of all rows, which a dataset unseen in training is scored with too."""
    pooled = fit_standardiser(x)
    z = standardise(x, *pooled)
    stats = dict.fromkeys(names, pooled)
    for n in names:
        rows = domain == n
        if len(np.unique(group[rows])) >= MIN_DOMAIN_CLIPS:
            stats[n] = fit_standardiser(x[rows])
            z[rows] = standardise(x[rows], *stats[n])
    return z, pooled, stats


def fit_standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and std ignoring NaN; all-NaN columns get mean 0, constant ones std 1."""
    x = np.where(np.isfinite(x), x, np.nan)
    ok = np.isfinite(x)
    n = ok.sum(0)
    mean = np.where(n > 0, np.nansum(x, 0) / np.maximum(n, 1), 0.0)
    var = np.where(n > 0, np.nansum((x - mean) ** 2, 0) / np.maximum(n, 1), 1.0)
    std = np.sqrt(var)
    return mean.astype(np.float64), np.where(std > 1e-9, std, 1.0).astype(np.float64)


def standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    z = (np.asarray(x, np.float64) - mean) / std
    z[~np.isfinite(z)] = 0.0  # missing values become the training mean
    return z


def softmax(s: np.ndarray) -> np.ndarray:
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def tta_mean(scores: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean score per group (source clip): (groups, (G, C))."""
    groups, inv = np.unique(group, return_inverse=True)
    out = np.zeros((len(groups), scores.shape[1]))
    np.add.at(out, inv, scores)
    return groups, out / np.bincount(inv)[:, None]


def inner_folds(rows: Rows, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation tta rows) per inner fold, stratified over source clips; empty
    when some class has fewer source clips than 2 (no inner CV possible)."""
    from sklearn.model_selection import StratifiedKFold

    groups, first = np.unique(rows.group, return_index=True)
    g_label = rows.y[first]
    k = min(folds, int(np.bincount(g_label).min()) if len(g_label) else 0)
    if folds == 0 or k < 2:
        return []
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    out = []
    for _, val in skf.split(groups, g_label):
        is_val = np.isin(rows.group, groups[val])
        out.append((np.flatnonzero(~is_val), np.flatnonzero(is_val & rows.tta)))
    return out


def _default(candidates: tuple[float, ...]) -> float:
    """The candidate used when no inner CV can run: the middle of the sorted list."""
    c = sorted(candidates)
    return c[(len(c) - 1) // 2]


def _nll(scores: np.ndarray, y: np.ndarray) -> float:
    p = softmax(scores)
    return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))


def _best(results: list[tuple[float, float, float]]) -> float:
    """results: (candidate, accuracy, nll); best accuracy, then least nll, then first."""
    return max(results, key=lambda r: (round(r[1], 9), -r[2]))[0]


def _choose(candidates: list, scores: list[np.ndarray], y: np.ndarray, dom: np.ndarray | None,
            names: list[str], rate=None) -> tuple[object, dict[str, object], list]:
    """The best candidate on all validation clips, and per dataset on that dataset's own clips.

    scores[i]: (n, C) validation scores of candidates[i]; rate(s, y) -> (accuracy, nll) of a
    candidate on some clips (default: accuracy and log-loss of s). Choosing per dataset is what
    keeps joint training from costing a dataset accuracy: a big dataset's weights are
    regularised as its own clips ask, not as the pooled validation (which a small synthetic
    set can dominate) prefers. Returns (pooled best, {dataset: best}, pooled results)."""
    rate = rate or (lambda s, yy: (float(np.mean(s.argmax(1) == yy)), _nll(s, yy)))

    def best_on(mask: np.ndarray) -> tuple[object, list]:
        results = [(c, *rate(s[mask], y[mask])) for c, s in zip(candidates, scores)]
        return _best(results), results

    pooled, results = best_on(np.ones(len(y), bool))
    per = {}
    for n in names:
        mask = dom == n
        per[n] = best_on(mask)[0] if mask.sum() >= MIN_DOMAIN_CLIPS else pooled
    return pooled, per, results


# --- logistic regression ----------------------------------------------------------------------

def _fit_logreg(x: np.ndarray, y: np.ndarray, n_classes: int, C: float,
                domain: np.ndarray | None = None, names: Sequence[str] = (),
                group: np.ndarray | None = None) -> LinearHead | DomainHead:
    """group (the rows' source clips) is needed with names (several datasets)."""
    from sklearn.linear_model import LogisticRegression

    names = list(names)
    z, (mean, std), stats = _standardised(x, domain, names, group)
    if names:
        z = _domain_design(z, domain, names)
    coef = np.zeros((n_classes, z.shape[1]))
    intercept = np.full(n_classes, -1e3)  # classes absent from training: never predicted
    present = np.unique(y)
    if len(present) == 1:
        intercept[present[0]] = 0.0
    else:
        # newton-cg: the same optimum as lbfgs, 10-50x faster on these small dense problems
        m = LogisticRegression(C=C, solver="newton-cg", max_iter=1000).fit(z, y)
        if len(present) == 2:  # binary sklearn model: one weight vector for class 1
            coef[present[1]], intercept[present[1]] = m.coef_[0], m.intercept_[0]
            intercept[present[0]] = 0.0
        else:
            coef[m.classes_], intercept[m.classes_] = m.coef_, m.intercept_
    if not names:
        return LinearHead(mean, std, coef, intercept)
    shared, per = _split_domain_coef(coef, intercept, names, x.shape[1])
    return DomainHead(LinearHead(mean, std, *shared),
                      {n: LinearHead(*stats[n], *ci) for n, ci in per.items()})


def fit_logreg(rows: Rows, n_classes: int, candidates: tuple[float, ...], folds: int,
               seed: int) -> tuple[LinearHead | DomainHead, dict]:
    """Standardised multinomial logistic regression; C by inner CV (accuracy, then log-loss),
    per dataset when there are several (`_choose`)."""
    splits = inner_folds(rows, folds, seed)
    names = rows.domains()
    dom = rows.domain
    if splits and len(candidates) > 1:
        scores: list[list[np.ndarray]] = [[] for _ in candidates]
        y_val, d_val = [], []
        for tr, va in splits:
            _, first = np.unique(rows.group[va], return_index=True)
            y_val.append(rows.y[va][first])
            d_val.append(None if dom is None else dom[va][first])
            for i, C in enumerate(candidates):
                head = _fit_logreg(rows.x[tr], rows.y[tr], n_classes, C,
                                   None if dom is None else dom[tr], names, rows.group[tr])
                scores[i].append(tta_mean(head.scores(rows.x[va], None if dom is None
                                                      else dom[va]), rows.group[va])[1])
        best, per, results = _choose(list(candidates), [np.concatenate(v) for v in scores],
                                     np.concatenate(y_val),
                                     None if dom is None else np.concatenate(d_val), names)
    else:
        best, results = _default(candidates), []
        per = dict.fromkeys(names, best)
    fits = {C: _fit_logreg(rows.x, rows.y, n_classes, C, dom, names, rows.group)
            for C in {best, *per.values()}}
    head = fits[best]
    if names:
        head = DomainHead(fits[best].shared, {n: fits[C].by_domain[n] for n, C in per.items()})
    info = {"C": best, "inner_cv": [list(r) for r in results]}
    if names:
        info["C_by_dataset"] = per
    return head, info


# --- ridge regression to one-hot targets (dual form: few rows, many features) -----------------

def _ridge_dual(K: np.ndarray, Y: np.ndarray, alphas: list[float]) -> list[np.ndarray]:
    """Dual coefficients A (n, C) for every alpha: (K + alpha I) A = Y - mean(Y)."""
    lam, Q = np.linalg.eigh(K)
    qy = Q.T @ (Y - Y.mean(0))
    return [Q @ (qy / (lam + a)[:, None]) for a in alphas]


def fit_ridge(rows: Rows, n_classes: int, alphas: tuple[float, ...],
              temperatures: tuple[float, ...], folds: int, seed: int
              ) -> tuple[LinearHead | DomainHead, dict]:
    """Ridge regression of one-hot labels on standardised features; alpha by inner CV
    (accuracy, then log-loss at the best temperature) and the softmax temperature by inner CV
    (least log-loss); both per dataset when there are several (`_choose`)."""
    names = rows.domains()
    z, (mean, std), stats = _standardised(rows.x, rows.domain, names, rows.group)
    z /= np.sqrt(rows.x.shape[1])  # alpha per unit kernel
    K = z @ z.T
    if names:  # the kernel of _domain_design's features: shared + same dataset + its bias
        same = (rows.domain[:, None] == rows.domain[None, :]).astype(np.float64)
        K = K * (1.0 + same) + same
    Y = np.eye(n_classes)[rows.y]
    splits = inner_folds(rows, folds, seed)
    alphas_l, temps = list(alphas), list(temperatures)
    info: dict = {}
    if splits and (len(alphas_l) > 1 or len(temps) > 1):
        val_scores: list[list[np.ndarray]] = [[] for _ in alphas_l]
        y_val, d_val = [], []
        for tr, va in splits:
            duals = _ridge_dual(K[np.ix_(tr, tr)], Y[tr], alphas_l)
            _, first = np.unique(rows.group[va], return_index=True)
            y_val.append(rows.y[va][first])
            d_val.append(rows.domain[va][first] if names else None)
            for i, A in enumerate(duals):
                s = K[np.ix_(va, tr)] @ A + Y[tr].mean(0)
                val_scores[i].append(tta_mean(s, rows.group[va])[1])

        scores = [np.concatenate(v) for v in val_scores]
        y_v = np.concatenate(y_val)
        d_v = np.concatenate(d_val) if names else None

        def rate(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
            return float(np.mean(s.argmax(1) == y)), min(_nll(t * s, y) for t in temps)

        def temperature(a: float, mask: np.ndarray) -> float:
            s, y = scores[alphas_l.index(a)][mask], y_v[mask]
            return min((_nll(t * s, y), t) for t in temps)[1]

        alpha, per_alpha, results = _choose(alphas_l, scores, y_v, d_v, names, rate)
        temp = temperature(alpha, np.ones(len(y_v), bool))
        per = {}
        for n, a in per_alpha.items():
            own = (d_v == n).sum() >= MIN_DOMAIN_CLIPS  # else a is the pooled alpha
            per[n] = (a, temperature(a, d_v == n) if own else temp)
        info["inner_cv"] = [list(r) for r in results]
    else:
        alpha, temp = _default(alphas), _default(temperatures)
        per = dict.fromkeys(names, (alpha, temp))
    chosen = sorted({alpha, *(a for a, _ in per.values())})
    duals = dict(zip(chosen, _ridge_dual(K, Y, chosen)))
    root = np.sqrt(rows.x.shape[1])

    def primal(a: float) -> np.ndarray:  # weights on standardised features, shared part
        return (z.T @ duals[a]).T / root

    head = LinearHead(mean, std, np.ascontiguousarray(primal(alpha)), Y.mean(0),
                      scale=float(temp))
    if names:
        by_domain = {}
        for n, (a, t) in per.items():
            r, A = rows.domain == n, duals[a]
            by_domain[n] = LinearHead(*stats[n], primal(a) + (z[r].T @ A[r]).T / root,
                                      Y.mean(0) + A[r].sum(0), scale=float(t))
        head = DomainHead(head, by_domain)
        info["alpha_temperature_by_dataset"] = per
    info.update(alpha=alpha, temperature=temp)
    return head, info
