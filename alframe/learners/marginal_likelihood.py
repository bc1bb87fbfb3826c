"""The log marginal likelihood of a Matérn Gaussian process and its gradient, in closed form.

scikit-learn's `GaussianProcessRegressor` differentiates an anisotropic Matérn kernel through an
(n, n, dim) tensor per evaluation, which dominates a fit (about 13 ms an evaluation at 256 rows
and 8 inputs on 2 cores). For the kernel `GaussianProcessCommittee` uses,

    k(a, b) = c * m(r) [+ s * 1(a == b)],   r^2 = sum_d (a_d - b_d)^2 / l_d^2,

the gradient with respect to log l_d is sum_ij P_ij (u_id - u_jd)^2 with P symmetric and
u = z / l, which is 2 * sum_i u_id^2 (P 1)_i - 2 * u_d' P u_d: two (n, n) x (n, dim) products
instead of the tensor (about 2.6 ms an evaluation with one BLAS thread). The parameters are
sklearn's own (`kernel.theta`: log c, log l_1..l_dim, log s) and the optimiser is the same
L-BFGS-B within the same bounds, so from the same start it finds the same optimum, about five
times sooner.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.linalg.lapack import dpotri
from scipy.optimize import minimize

JITTER = 1e-10
"""Added to the Gram matrix's diagonal, as `GaussianProcessRegressor(alpha=1e-10)` does."""

SUPPORTED_NU = (0.5, 1.5, 2.5, float("inf"))


def _shape_and_slope(r: np.ndarray, nu: float) -> tuple[np.ndarray, np.ndarray]:
    """m(r) and h(r) = -m'(r) / r for scaled distances r (n, n), so that
    dm(r_ab) / dlog l_d = h(r_ab) (a_d - b_d)^2 / l_d^2."""
    if nu == 0.5:
        m = np.exp(-r)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.where(r > 0, m / np.where(r > 0, r, 1.0), 0.0)
        return m, h
    if nu == 1.5:
        e = np.exp(-np.sqrt(3.0) * r)
        return (1.0 + np.sqrt(3.0) * r) * e, 3.0 * e
    if nu == 2.5:
        e = np.exp(-np.sqrt(5.0) * r)
        return (1.0 + np.sqrt(5.0) * r + 5.0 / 3.0 * r**2) * e, 5.0 / 3.0 * (1.0 + np.sqrt(5.0) * r) * e
    if np.isinf(nu):
        m = np.exp(-0.5 * r**2)
        return m, m
    raise ValueError(f"nu must be one of {SUPPORTED_NU}, got {nu}")


def cholesky_inverse(lower: np.ndarray) -> np.ndarray:
    """A^-1 (n, n) from the lower Cholesky factor of A (n, n): a third of the work of solving for I."""
    inverse, info = dpotri(lower, lower=1)
    if info != 0:
        raise LinAlgError(f"dpotri failed with info={info}")
    return np.tril(inverse) + np.tril(inverse, -1).T


def negative_log_marginal_likelihood(theta: np.ndarray, z: np.ndarray, y: np.ndarray, nu: float,
                                     noise: bool) -> tuple[float, np.ndarray]:
    """-log p(y | z, theta) and its gradient (len(theta),) for inputs z (n, dim) and standardised
    outputs y (n, k) (outputs share the kernel; their likelihoods add).

    theta is log c, log l_1..l_dim and, with `noise`, log s. A Gram matrix that is not positive
    definite gives (inf, zeros), as scikit-learn does.
    """
    dim = z.shape[1]
    c = np.exp(theta[0])
    lengths = np.exp(theta[1:1 + dim])
    u = z / lengths
    sq = np.sum(u**2, axis=1)
    r = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * u @ u.T, 0.0))
    np.fill_diagonal(r, 0.0)
    m, h = _shape_and_slope(r, nu)
    gram = c * m
    gram[np.diag_indices_from(gram)] += JITTER + (np.exp(theta[-1]) if noise else 0.0)
    try:
        factor = cho_factor(gram, lower=True, check_finite=False)
    except (LinAlgError, ValueError):
        return np.inf, np.zeros_like(theta)
    alpha = cho_solve(factor, y, check_finite=False)  # (n, k)
    k = y.shape[1]
    n = len(z)
    value = (0.5 * np.sum(y * alpha) + k * np.sum(np.log(np.diag(factor[0])))
             + 0.5 * k * n * np.log(2.0 * np.pi))
    inverse = cholesky_inverse(factor[0])
    w = alpha @ alpha.T - k * inverse  # d log p = 0.5 tr(w dK)
    gradient = np.empty_like(theta)
    gradient[0] = 0.5 * np.sum(w * (c * m))
    p = w * (c * h)
    gradient[1:1 + dim] = np.sum(u**2 * p.sum(axis=1)[:, None], axis=0) - np.sum((p @ u) * u, axis=0)
    if noise:
        gradient[-1] = 0.5 * np.exp(theta[-1]) * np.trace(w)
    return value, -gradient


def maximise(z: np.ndarray, y: np.ndarray, starts: list[np.ndarray], bounds: np.ndarray, *, nu: float,
             noise: bool) -> tuple[np.ndarray, float]:
    """The best local maximum of the log marginal likelihood from each start (theta,), by
    L-BFGS-B within `bounds` (len(theta), 2) in log space: (theta, log marginal likelihood)."""
    best_theta, best_value = None, np.inf
    for start in starts:
        result = minimize(negative_log_marginal_likelihood, np.clip(start, bounds[:, 0], bounds[:, 1]),
                          args=(z, y, nu, noise), jac=True, method="L-BFGS-B", bounds=bounds)
        if best_theta is None or result.fun < best_value:
            best_theta, best_value = result.x, float(result.fun)
    return best_theta, -best_value
