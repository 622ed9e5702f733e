"""The two regularised linear models `flr tune` fits, and the choice of their strength.

- pairwise: L2 logistic regression without intercept on chosen-minus-rejected follow-up scores;
  every pair goes in twice (as it is with label 1, negated with label 0), so the fitted score is
  antisymmetric and "chosen first" carries no information.
- rating: ridge regression of the rating on the follow-up scores (with an intercept).

Features are scaled to unit size before fitting (pairwise: root mean square, since differences
must not be centred; rating: standardised), so one penalty treats every follow-up alike; the
coefficients are returned on the raw scale (what a weighted follow-up set multiplies) and on the
scaled one (comparable importances). An optional length column is a control covariate: fitted
with the follow-ups, reported, and left out of the follow-up weights.

The strength is chosen by grouped cross-validation inside the training rows (`choose_strength`),
by held-out log-loss (pairwise) or squared error (rating); equal scores favour the stronger
penalty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

from core.names import PAIRWISE
from core.tuning.folds import grouped_folds

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)  # logistic inverse penalties, weakest last
ALPHA_GRID = (1000.0, 100.0, 10.0, 1.0, 0.1, 0.01)  # ridge penalties, strongest first
INNER_FOLDS = 4  # folds of the inner (strength-choosing) cross-validation
_TINY = 1e-12


@dataclass(frozen=True)
class Fitted:
    """A fitted model: raw-scale coefficients of the follow-up scores and its settings."""

    kind: str
    coef: np.ndarray  # per follow-up, on the raw scores
    scaled: np.ndarray  # per follow-up, on unit-scaled scores (importances)
    length_coef: float  # raw-scale coefficient of the length covariate (0 without it)
    intercept: float  # rating only
    strength: float  # C (pairwise) or alpha (rating)

    def followup_score(self, features: np.ndarray) -> np.ndarray:
        """The follow-up part of the prediction (what the weighted set computes, up to scale)."""
        return features @ self.coef + self.intercept


def _design(kind: str, features: np.ndarray, length: np.ndarray | None) -> np.ndarray:
    return features if length is None else np.column_stack([features, length])


def _scale(kind: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre, scale) per column; differences of pairs are not centred."""
    if kind == PAIRWISE:
        centre = np.zeros(x.shape[1])
        scale = np.sqrt(np.mean(x ** 2, axis=0))
    else:
        centre = x.mean(axis=0)
        scale = x.std(axis=0)
    return centre, np.where(scale > _TINY, scale, 1.0)


def fit(kind: str, features: np.ndarray, target: np.ndarray, length: np.ndarray | None,
        strength: float) -> Fitted:
    """Fit one model at one strength."""
    x = _design(kind, features, length)
    centre, scale = _scale(kind, x)
    z = (x - centre) / scale
    if kind == PAIRWISE:
        model = LogisticRegression(C=strength, fit_intercept=False, max_iter=5000)
        model.fit(np.vstack([z, -z]), np.r_[np.ones(len(z)), np.zeros(len(z))])
        beta, intercept = model.coef_[0], 0.0
    else:
        model = Ridge(alpha=strength)
        model.fit(z, target)
        beta, intercept = model.coef_, float(model.intercept_)
    raw = beta / scale
    intercept -= float(centre @ raw)
    p = features.shape[1]
    return Fitted(kind, raw[:p], beta[:p], float(raw[p]) if length is not None else 0.0,
                  intercept, strength)


def _loss(kind: str, fitted: Fitted, features: np.ndarray, target: np.ndarray,
          length: np.ndarray | None) -> float:
    pred = fitted.followup_score(features)
    if length is not None:
        pred = pred + fitted.length_coef * length
    if kind == PAIRWISE:
        return float(np.mean(np.logaddexp(0.0, -pred)))
    return float(np.mean((pred - target) ** 2))


def choose_strength(kind: str, features: np.ndarray, target: np.ndarray, length: np.ndarray | None,
                    groups: np.ndarray, seed: int = 0) -> float:
    """The grid strength with the lowest grouped cross-validated loss on these rows."""
    grid = C_GRID if kind == PAIRWISE else ALPHA_GRID
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        return grid[0]  # nothing to validate on: the strongest penalty
    folds = grouped_folds(groups, min(INNER_FOLDS, n_groups), seed)
    best, best_loss = grid[0], np.inf
    for strength in grid:
        losses = []
        for f in np.unique(folds):
            train, test = folds != f, folds == f
            fitted = fit(kind, features[train], target[train],
                         None if length is None else length[train], strength)
            losses.append(_loss(kind, fitted, features[test], target[test],
                                None if length is None else length[test]))
        loss = float(np.mean(losses))
        if loss < best_loss - 1e-12:
            best, best_loss = strength, loss
    return best
