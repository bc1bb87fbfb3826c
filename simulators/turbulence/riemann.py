"""Exact solution of the 1-D isothermal Riemann problem (numpy; a reference for the solver).

Left state (rho_L, u_L) for x < x0, right state (rho_R, u_R) for x > x0, sound speed c. The
solution is self-similar in xi = (x - x0) / t: a left wave, a uniform star region
(rho*, u*), a right wave; each wave is a shock where rho* exceeds the state it faces and a
rarefaction otherwise. Isothermal gas has no contact discontinuity.

Across a wave facing state K, u* = u_K -+ f_K(rho*) (minus for the left wave), with
    f_K(rho) = c (rho - rho_K) / sqrt(rho rho_K)   (shock: Rankine-Hugoniot, rho > rho_K)
    f_K(rho) = c ln(rho / rho_K)                    (rarefaction: Riemann invariant u +- c ln rho)
so rho* is the root of f_L(rho) + f_R(rho) + u_R - u_L = 0, increasing in rho. A left shock
moves at u_L - c sqrt(rho*/rho_L), a right one at u_R + c sqrt(rho*/rho_R); a left fan spans
u_L - c < xi < u* - c with u = xi + c, a right fan u* + c < xi < u_R + c with u = xi - c.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq

from simulators.turbulence.errors import InvalidSetting


class StarState(NamedTuple):
    """Density and velocity between the two waves."""

    density: float
    velocity: float


def _wave_function(rho, rho_k, c):
    if rho > rho_k:
        return c * (rho - rho_k) / math.sqrt(rho * rho_k)
    return c * math.log(rho / rho_k)


def star_state(rho_l: float, u_l: float, rho_r: float, u_r: float, c: float = 1.0) -> StarState:
    """rho* and u* of the isothermal Riemann problem; densities and c must be positive."""
    for name, value in (("rho_l", rho_l), ("rho_r", rho_r), ("c", c)):
        if not (math.isfinite(value) and value > 0):
            raise InvalidSetting(f"{name} must be a positive finite number, got {value!r}")
    for name, value in (("u_l", u_l), ("u_r", u_r)):
        if not math.isfinite(value):
            raise InvalidSetting(f"{name} must be finite, got {value!r}")

    def mismatch(log_rho):
        rho = math.exp(log_rho)
        return _wave_function(rho, rho_l, c) + _wave_function(rho, rho_r, c) + u_r - u_l

    # The mismatch rises monotonically from -inf (rho -> 0) to +inf: widen until bracketed.
    low = high = math.log(math.sqrt(rho_l * rho_r))
    while mismatch(low) > 0:
        low -= 2.0
    while mismatch(high) < 0:
        high += 2.0
    rho = math.exp(brentq(mismatch, low, high, xtol=1e-14, rtol=1e-14, maxiter=200))
    u = 0.5 * (u_l + u_r) + 0.5 * (_wave_function(rho, rho_r, c) - _wave_function(rho, rho_l, c))
    return StarState(rho, u)


def sample(xi: np.ndarray, rho_l: float, u_l: float, rho_r: float, u_r: float,
           c: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Density and velocity at similarity coordinates xi = (x - x0) / t, shape (n,) each."""
    xi = np.asarray(xi, dtype=np.float64)
    rho_s, u_s = star_state(rho_l, u_l, rho_r, u_r, c)
    rho = np.empty_like(xi)
    u = np.empty_like(xi)

    # Left wave.
    if rho_s > rho_l:
        shock = u_l - c * math.sqrt(rho_s / rho_l)
        outside, inside = xi < shock, xi >= shock
        fan = np.zeros_like(xi, dtype=bool)
    else:
        head, tail = u_l - c, u_s - c
        outside = xi < head
        fan = (xi >= head) & (xi < tail)
        inside = xi >= tail
    star = inside.copy()
    rho[outside], u[outside] = rho_l, u_l
    u[fan] = xi[fan] + c
    rho[fan] = rho_l * np.exp((u_l - u[fan]) / c)

    # Right wave, on the points not already left of the star region.
    if rho_s > rho_r:
        shock = u_r + c * math.sqrt(rho_s / rho_r)
        right, right_fan = xi > shock, np.zeros_like(xi, dtype=bool)
    else:
        head, tail = u_r + c, u_s + c
        right = xi > head
        right_fan = (xi > tail) & (xi <= head)
    star &= ~right & ~right_fan
    rho[star], u[star] = rho_s, u_s
    rho[right], u[right] = rho_r, u_r
    u[right_fan] = xi[right_fan] - c
    rho[right_fan] = rho_r * np.exp((u[right_fan] - u_r) / c)
    return rho, u
