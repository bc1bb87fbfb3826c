"""The test functions themselves: vectorised numpy maps (n, dim) -> (n,), with their domains.

Formulas, domains and parameters follow Surjanovic & Bingham's Virtual Library of Simulation
Experiments (VLSE, https://www.sfu.ca/~ssurjano/, 2013), which cites each original paper; the
docstrings name it too. Inputs are in the function's own units, columns in the order of its
`*_NAMES` tuple.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Domain = tuple[tuple[float, ...], tuple[float, ...]]


def _columns(x: np.ndarray, names: Sequence[str], function: str) -> np.ndarray:
    """`x` as float64 of shape (n, len(names)), or ValueError naming the function."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"{function} takes shape (n, {len(names)}) for {tuple(names)}, got {x.shape}")
    return x


# -- Ishigami -------------------------------------------------------------------------------

ISHIGAMI_NAMES = ("x1", "x2", "x3")
ISHIGAMI_DOMAIN: Domain = ((-math.pi,) * 3, (math.pi,) * 3)


@dataclass(frozen=True)
class Ishigami:
    """Ishigami & Homma (1990): sin(x1) + a sin(x2)^2 + b x3^4 sin(x1), on [-pi, pi]^3.

    Strongly non-linear and non-monotonic, with an interaction between x1 and x3 that vanishes
    on average. With inputs uniform on the box its mean is a / 2 and its variance
    a^2/8 + b pi^4/5 + b^2 pi^8/18 + 1/2 (VLSE; Sobol' & Levitan 1999). The VLSE values are
    a = 7, b = 0.1.

    Ref: T. Ishigami, T. Homma, "An importance quantification technique in uncertainty
    analysis for computer models", Proc. ISUMA 1990, 398-403.
    """

    a: float = 7.0
    b: float = 0.1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, 3) -> (n,)."""
        x1, x2, x3 = _columns(x, ISHIGAMI_NAMES, "ishigami").T
        return np.sin(x1) + self.a * np.sin(x2) ** 2 + self.b * x3**4 * np.sin(x1)

    @property
    def mean(self) -> float:
        return self.a / 2

    @property
    def variance(self) -> float:
        return self.a**2 / 8 + self.b * math.pi**4 / 5 + self.b**2 * math.pi**8 / 18 + 0.5


# -- Borehole -------------------------------------------------------------------------------

BOREHOLE_NAMES = ("rw", "r", "Tu", "Hu", "Tl", "Hl", "L", "Kw")
# VLSE's ranges (those of Morris, Mitchell & Ylvisaker 1993, all uniform).
BOREHOLE_DOMAIN: Domain = (
    (0.05, 100.0, 63070.0, 990.0, 63.1, 700.0, 1120.0, 9855.0),
    (0.15, 50000.0, 115600.0, 1110.0, 116.0, 820.0, 1680.0, 12045.0),
)


def borehole(x: np.ndarray) -> np.ndarray:
    """Water flow rate [m^3/yr] through a borehole between two aquifers: (n, 8) -> (n,).

    f = 2 pi Tu (Hu - Hl) / (ln(r/rw) (1 + 2 L Tu / (ln(r/rw) rw^2 Kw) + Tu / Tl)), with rw the
    borehole radius [m], r the radius of influence [m], Tu, Tl the transmissivities of the upper
    and lower aquifer [m^2/yr], Hu, Hl their potentiometric heads [m], L the borehole length [m]
    and Kw its hydraulic conductivity [m/yr].

    Refs: W. V. Harper, S. K. Gupta, "Sensitivity/uncertainty analysis of a borehole scenario
    comparing Latin hypercube sampling and deterministic sensitivity approaches", BMI/ONWI-516,
    1983; M. D. Morris, T. J. Mitchell, D. Ylvisaker, Technometrics 35 (1993) 243-255.
    """
    rw, r, tu, hu, tl, hl, length, kw = _columns(x, BOREHOLE_NAMES, "borehole").T
    log_ratio = np.log(r / rw)
    return 2 * np.pi * tu * (hu - hl) / (log_ratio * (1 + 2 * length * tu / (log_ratio * rw**2 * kw) + tu / tl))


# -- OTL circuit ----------------------------------------------------------------------------

OTL_NAMES = ("Rb1", "Rb2", "Rf", "Rc1", "Rc2", "beta")
OTL_DOMAIN: Domain = ((50.0, 25.0, 0.5, 1.2, 0.25, 50.0), (150.0, 70.0, 3.0, 2.5, 1.2, 300.0))


def otl_circuit(x: np.ndarray) -> np.ndarray:
    """Mid-point voltage Vm [V] of an output transformerless push-pull circuit: (n, 6) -> (n,).

    Resistances Rb1, Rb2, Rf, Rc1, Rc2 [kOhm] and current gain beta [A]; with
    Vb1 = 12 Rb2 / (Rb1 + Rb2) and D = beta (Rc2 + 9) + Rf,
    Vm = (Vb1 + 0.74) beta (Rc2 + 9) / D + 11.35 Rf / D + 0.74 Rf beta (Rc2 + 9) / (Rc1 D).

    Ref: E. N. Ben-Ari, D. M. Steinberg, "Modeling data from computer experiments: an empirical
    comparison of kriging with MARS and projection pursuit regression", Quality Engineering 19
    (2007) 327-338.
    """
    rb1, rb2, rf, rc1, rc2, beta = _columns(x, OTL_NAMES, "otl_circuit").T
    vb1 = 12 * rb2 / (rb1 + rb2)
    gain = beta * (rc2 + 9)
    denominator = gain + rf
    return (vb1 + 0.74) * gain / denominator + 11.35 * rf / denominator + 0.74 * rf * gain / (rc1 * denominator)


# -- Piston ---------------------------------------------------------------------------------

PISTON_NAMES = ("M", "S", "V0", "k", "P0", "Ta", "T0")
PISTON_DOMAIN: Domain = (
    (30.0, 0.005, 0.002, 1000.0, 90000.0, 290.0, 340.0),
    (60.0, 0.020, 0.010, 5000.0, 110000.0, 296.0, 360.0),
)


def piston(x: np.ndarray) -> np.ndarray:
    """Cycle time C [s] of a piston moving in a cylinder: (n, 7) -> (n,).

    Piston weight M [kg], surface area S [m^2], initial gas volume V0 [m^3], spring
    coefficient k [N/m], atmospheric pressure P0 [N/m^2], ambient and filling-gas temperatures
    Ta, T0 [K]; with A = P0 S + 19.62 M - k V0 / S and
    V = S / (2k) (sqrt(A^2 + 4 k P0 V0 Ta / T0) - A),
    C = 2 pi sqrt(M / (k + S^2 P0 V0 Ta / (T0 V^2))).

    Refs: R. S. Kenett, S. Zacks, "Modern Industrial Statistics", Duxbury 1998; Ben-Ari &
    Steinberg (2007), as for `otl_circuit`.
    """
    m, s, v0, k, p0, ta, t0 = _columns(x, PISTON_NAMES, "piston").T
    a = p0 * s + 19.62 * m - k * v0 / s
    v = s / (2 * k) * (np.sqrt(a**2 + 4 * k * p0 * v0 * ta / t0) - a)
    return 2 * np.pi * np.sqrt(m / (k + s**2 * p0 * v0 * ta / (t0 * v**2)))


# -- Friedman #1 ----------------------------------------------------------------------------

def friedman_names(n_inputs: int) -> tuple[str, ...]:
    """x1 .. x{n_inputs}; five or more (the sixth onwards are inert)."""
    if not isinstance(n_inputs, int) or n_inputs < 5:
        raise ValueError(f"the Friedman function needs n_inputs >= 5 (five of them active), got {n_inputs!r}")
    return tuple(f"x{i}" for i in range(1, n_inputs + 1))


def friedman(x: np.ndarray) -> np.ndarray:
    """Friedman #1: 10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 + 10 x4 + 5 x5 on [0, 1]^d: (n, d) -> (n,).

    d >= 5; inputs beyond the fifth do not enter (Friedman's MARS paper used d = 10, five of
    them inert, to test that a method ignores them). The same formula as scikit-learn's
    `make_friedman1` without noise.

    Refs: J. H. Friedman, "Multivariate adaptive regression splines", Ann. Statist. 19 (1991)
    1-67; J. H. Friedman, E. Grosse, W. Stuetzle, "Multidimensional additive spline
    approximation", SIAM J. Sci. Stat. Comput. 4 (1983) 291-301.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 5:
        raise ValueError(f"friedman takes shape (n, d) with d >= 5, got {x.shape}")
    x1, x2, x3, x4, x5 = x[:, :5].T
    return 10 * np.sin(np.pi * x1 * x2) + 20 * (x3 - 0.5) ** 2 + 10 * x4 + 5 * x5


# -- Failing over part of the box ----------------------------------------------------------

@dataclass(frozen=True)
class FailsWhere:
    """`function` that fails where `region` holds: its value there is NaN, as a code that does
    not converge returns or raises, so every run there is a failed run. (n, d) -> (n,).

    A simulator that fails over a region of its inputs spends a run on every query there and
    learns nothing from it; these variants test that a strategy does not keep asking there.
    """

    function: Callable[[np.ndarray], np.ndarray]
    region: Callable[[np.ndarray], np.ndarray]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return np.where(self.region(x), np.nan, self.function(x))


def friedman_corner(x: np.ndarray) -> np.ndarray:
    """Where Friedman #1 fails: x1 + x2 > 1.4, a corner holding 18 % of [0, 1]^d. (n, d) -> (n,) bool."""
    x = np.asarray(x, dtype=np.float64)
    return x[:, 0] + x[:, 1] > 1.4


def ishigami_hole(x: np.ndarray) -> np.ndarray:
    """Where the Ishigami function fails: x1^2 + x2^2 < 1.5^2, a hollow holding 18 % of [-pi, pi]^3
    (a cylinder along x3). (n, 3) -> (n,) bool."""
    x = np.asarray(x, dtype=np.float64)
    return x[:, 0] ** 2 + x[:, 1] ** 2 < 1.5**2


CUBIC_NAMES = ("p", "q", "c")
CUBIC_DOMAIN: Domain = ((-6.0, -2.0, 0.0), (-0.5, 2.0, 1.0))


def cubic_root(x: np.ndarray) -> np.ndarray:
    """The largest real root of t^3 + p t + q, plus c: (n, 3) -> (n,); NaN (a failed run) where
    only one root is real, 27 q^2 >= -4 p^3 (24 % of `CUBIC_DOMAIN`). Along the edge where the two
    largest roots meet (q -> 2 (-p/3)^(3/2)) the root's slope diverges: the output is steepest
    right beside the failures. Trigonometric solution (Viete)."""
    x = np.asarray(x, dtype=np.float64)
    p, q, c = _columns(x, CUBIC_NAMES, "cubic_root").T
    three_real = 27 * q**2 < -4 * p**3
    p = np.minimum(p, -1e-12)
    angle = np.arccos(np.clip(1.5 * q / p * np.sqrt(-3 / p), -1.0, 1.0))
    return np.where(three_real, 2 * np.sqrt(-p / 3) * np.cos(angle / 3) + c, np.nan)


# -- Genz family ----------------------------------------------------------------------------

def _genz_parameters(name: str, values, dim: int) -> np.ndarray:
    """A scalar or one value per input, as (dim,) float64."""
    array = np.asarray(list(values) if isinstance(values, Sequence) and not isinstance(values, str) else values,
                       dtype=np.float64)
    if array.ndim > 1 or (array.ndim == 1 and len(array) != dim):
        raise ValueError(f"Genz parameter {name} needs a number or {dim} numbers, got {values!r}")
    array = np.broadcast_to(array, (dim,)).copy()
    if not np.all(np.isfinite(array)):
        raise ValueError(f"Genz parameter {name} must be finite, got {values!r}")
    return array


def genz_names(dim: int) -> tuple[str, ...]:
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"a Genz function needs dim >= 1, got {dim!r}")
    return tuple(f"x{i}" for i in range(1, dim + 1))


@dataclass(frozen=True)
class GenzDiscontinuous:
    """Genz (1984) discontinuous integrand on [0, 1]^d, d >= 2:
    f = 0 if x1 > u1 or x2 > u2, else exp(sum_i a_i x_i).

    A smooth exponential rise towards (u1, u2) that drops to zero across two axis-aligned
    edges. VLSE's defaults: a_i = 5, u_i = 0.5. Its integral over the cube is
    prod_{i<=2} (exp(a_i u_i) - 1) / a_i x prod_{i>2} (exp(a_i) - 1) / a_i.

    Ref: A. Genz, "Testing multidimensional integration routines", in Tools, Methods and
    Languages for Scientific and Engineering Computation, Elsevier 1984, 81-94.
    """

    a: tuple[float, ...]
    u: tuple[float, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, d) -> (n,)."""
        x = _columns(x, genz_names(len(self.a)), "genz_discontinuous")
        outside = (x[:, 0] > self.u[0]) | (x[:, 1] > self.u[1])
        return np.where(outside, 0.0, np.exp(x @ np.asarray(self.a)))

    @property
    def integral(self) -> float:
        # Inputs 1 and 2 integrate over [0, u_i] (clipped to the cube), the others over [0, 1].
        uppers = [min(max(u, 0.0), 1.0) for u in self.u[:2]] + [1.0] * (len(self.a) - 2)
        return math.prod(math.expm1(a * t) / a if a else t for a, t in zip(self.a, uppers))


def genz_discontinuous_function(dim: int = 2, a: float | Sequence[float] = 5.0,
                                u: float | Sequence[float] = 0.5) -> GenzDiscontinuous:
    """The discontinuous integrand with scalar or per-input parameters; dim >= 2."""
    if not isinstance(dim, int) or dim < 2:
        raise ValueError(f"the Genz discontinuous function needs dim >= 2, got {dim!r}")
    return GenzDiscontinuous(tuple(_genz_parameters("a", a, dim)), tuple(_genz_parameters("u", u, dim)))


@dataclass(frozen=True)
class GenzGaussianPeak:
    """Genz (1984) Gaussian peak on [0, 1]^d: f = exp(-sum_i a_i^2 (x_i - u_i)^2).

    The peak's standard deviation along input i is 1 / (a_i sqrt 2); larger a_i make it
    narrower and sharper (VLSE's default a_i = 5, u_i = 0.5). Its integral over the cube is
    prod_i sqrt(pi) / (2 a_i) (erf(a_i (1 - u_i)) + erf(a_i u_i)).

    Ref: Genz (1984), as for `GenzDiscontinuous`.
    """

    a: tuple[float, ...]
    u: tuple[float, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, d) -> (n,)."""
        x = _columns(x, genz_names(len(self.a)), "genz_gaussian_peak")
        return np.exp(-np.sum(np.asarray(self.a) ** 2 * (x - np.asarray(self.u)) ** 2, axis=1))

    @property
    def integral(self) -> float:
        return float(np.prod([math.sqrt(math.pi) / (2 * a) * (math.erf(a * (1 - u)) + math.erf(a * u))
                              for a, u in zip(self.a, self.u)]))


def genz_gaussian_peak_function(dim: int = 2, a: float | Sequence[float] = 15.0,
                                u: float | Sequence[float] = 0.5) -> GenzGaussianPeak:
    """The Gaussian peak with scalar or per-input parameters; every a_i > 0."""
    a_values = _genz_parameters("a", a, len(genz_names(dim)))
    if np.any(a_values <= 0):
        raise ValueError(f"Genz Gaussian peak widths a must be > 0, got {a!r}")
    return GenzGaussianPeak(tuple(a_values), tuple(_genz_parameters("u", u, dim)))


# -- Heteroscedastic sine -------------------------------------------------------------------

HETEROSCEDASTIC_NAMES = ("x",)
HETEROSCEDASTIC_DOMAIN: Domain = ((0.0,), (1.0,))
SEED_LIMIT = 2**32


def sine_mean(x: np.ndarray) -> np.ndarray:
    """The noise-free mean 2 sin(2 pi x): (n, 1) -> (n,)."""
    (x,) = _columns(x, HETEROSCEDASTIC_NAMES, "heteroscedastic_sine").T
    return 2 * np.sin(2 * np.pi * x)


def standard_normals(x: np.ndarray, seed: int) -> np.ndarray:
    """One standard normal per row of `x` (n, d) -> (n,), a pure function of `seed` and the
    row's float64 bytes: the same input gives the same value in any batch and any process.

    -0.0 counts as 0.0 (the same input); every other bit of the value counts.
    """
    rows = np.ascontiguousarray(np.atleast_2d(np.asarray(x, dtype="<f8")) + 0.0)
    out = np.empty(len(rows))
    for i, row in enumerate(rows):
        digest = np.frombuffer(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), dtype="<u4")
        out[i] = np.random.default_rng([seed, *(int(v) for v in digest)]).standard_normal()
    return out


@dataclass(frozen=True)
class HeteroscedasticSine:
    """y = 2 sin(2 pi x) + sd(x) z on [0, 1], with sd rising linearly from sd_low at x = 0 to
    sd_high at x = 1 (0.5 and 1.5 in the synthetic problem of Goldberg, Williams & Bishop 1998).

    z is standard normal and fixed by `seed` and the query's bytes (`standard_normals`), so a
    query always returns the same noisy value. `mean` is the noise-free target.

    Ref: P. W. Goldberg, C. K. I. Williams, C. M. Bishop, "Regression with input-dependent
    noise: a Gaussian process treatment", NIPS 10 (1998) 493-499.
    """

    sd_low: float = 0.5
    sd_high: float = 1.5
    seed: int = 0

    def noise_sd(self, x: np.ndarray) -> np.ndarray:
        """(n, 1) -> (n,)."""
        (x,) = _columns(x, HETEROSCEDASTIC_NAMES, "heteroscedastic_sine").T
        return self.sd_low + (self.sd_high - self.sd_low) * x

    def mean(self, x: np.ndarray) -> np.ndarray:
        return sine_mean(x)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, 1) -> (n,), noisy."""
        return sine_mean(x) + self.noise_sd(x) * standard_normals(x, self.seed)


# -- Wing weight ----------------------------------------------------------------------------

WING_NAMES = ("Sw", "Wfw", "A", "Lambda", "q", "lam", "tc", "Nz", "Wdg", "Wp")
WING_DOMAIN: Domain = (
    (150.0, 220.0, 6.0, -10.0, 16.0, 0.5, 0.08, 2.5, 1700.0, 0.025),
    (200.0, 300.0, 10.0, 10.0, 45.0, 1.0, 0.18, 6.0, 2500.0, 0.08),
)


def wing_weight(x: np.ndarray) -> np.ndarray:
    """A light aircraft's wing weight [lb]: (n, 10) -> (n,).

    f = 0.036 Sw^0.758 Wfw^0.0035 (A / cos^2 L)^0.6 q^0.006 lam^0.04 (100 tc / cos L)^-0.3
    (Nz Wdg)^0.49 + Sw Wp, with Sw the wing area [ft^2], Wfw the fuel weight in the wing [lb],
    A the aspect ratio, L (`Lambda`) the quarter-chord sweep [degrees], q the cruise dynamic
    pressure [lb/ft^2], lam the taper ratio, tc the thickness-to-chord ratio, Nz the ultimate
    load factor, Wdg the design gross weight [lb] and Wp the paint weight [lb/ft^2]. Smooth,
    with a few inputs (Nz, A, Wdg, tc) carrying almost all of the variance.

    Ref: A. Forrester, A. Sobester, A. Keane, "Engineering Design via Surrogate Modelling",
    Wiley (2008), p. 196; VLSE "wingweight".
    """
    sw, wfw, a, sweep, q, lam, tc, nz, wdg, wp = _columns(x, WING_NAMES, "wing_weight").T
    cos = np.cos(np.deg2rad(sweep))
    return (0.036 * sw**0.758 * wfw**0.0035 * (a / cos**2) ** 0.6 * q**0.006 * lam**0.04
            * (100 * tc / cos) ** -0.3 * (nz * wdg) ** 0.49 + sw * wp)


# -- Robot arm ------------------------------------------------------------------------------

ROBOT_ARM_NAMES = ("theta1", "theta2", "theta3", "theta4", "L1", "L2", "L3", "L4")
ROBOT_ARM_DOMAIN: Domain = ((0.0,) * 4 + (0.0,) * 4, (2 * math.pi,) * 4 + (1.0,) * 4)


def robot_arm(x: np.ndarray) -> np.ndarray:
    """Distance of a planar four-segment robot arm's end from its shoulder: (n, 8) -> (n,).

    Segment i has length L_i and sits at angle theta_1 + ... + theta_i; the end is at
    (u, v) = sum_i L_i (cos, sin)(theta_1 + ... + theta_i) and f = sqrt(u^2 + v^2). Periodic in
    the angles, with a kink where the arm folds back onto its shoulder (f = 0).

    Ref: J. An, A. Owen, "Quasi-regression", J. Complexity 17 (2001) 588-607; VLSE "robot".
    """
    columns = _columns(x, ROBOT_ARM_NAMES, "robot_arm")
    angles = np.cumsum(columns[:, :4], axis=1)
    lengths = columns[:, 4:]
    u = (lengths * np.cos(angles)).sum(axis=1)
    v = (lengths * np.sin(angles)).sum(axis=1)
    return np.hypot(u, v)


# -- Hartmann 6-D ---------------------------------------------------------------------------

HARTMANN6_NAMES = tuple(f"x{i}" for i in range(1, 7))
HARTMANN6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
HARTMANN6_A = np.array([[10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
                        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
                        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
                        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0]])
HARTMANN6_P = 1e-4 * np.array([[1312.0, 1696.0, 5569.0, 124.0, 8283.0, 5886.0],
                               [2329.0, 4135.0, 8307.0, 3736.0, 1004.0, 9991.0],
                               [2348.0, 1451.0, 3522.0, 2883.0, 3047.0, 6650.0],
                               [4047.0, 8828.0, 8732.0, 5743.0, 1091.0, 381.0]])


def hartmann6(x: np.ndarray) -> np.ndarray:
    """The 6-D Hartmann function on [0, 1]^6: (n, 6) -> (n,).

    f = -sum_i alpha_i exp(-sum_j A_ij (x_j - P_ij)^2): four anisotropic Gaussian wells, close
    to zero over most of the cube, six local minima, the global one -3.32237.

    Ref: L. C. W. Dixon, G. P. Szego, "The global optimization problem: an introduction",
    Towards Global Optimisation 2 (1978) 1-15; VLSE "hart6".
    """
    x = _columns(x, HARTMANN6_NAMES, "hartmann6")
    inner = (HARTMANN6_A[None] * (x[:, None, :] - HARTMANN6_P[None]) ** 2).sum(axis=2)  # (n, 4)
    return -(HARTMANN6_ALPHA[None] * np.exp(-inner)).sum(axis=1)


# -- Environmental model: a pollutant spilled twice into a channel ---------------------------

ENVIRONMENTAL_NAMES = ("M", "D", "L", "tau")
ENVIRONMENTAL_DOMAIN: Domain = ((7.0, 0.02, 0.01, 30.01), (13.0, 0.12, 3.0, 30.295))
# Where and when the concentration is read: 5 places x 6 times = 30 outputs. t = 31 lies just
# after the second spill (tau in [30.01, 30.295]), where the output changes fastest.
ENVIRONMENTAL_PLACES = (0.5, 1.0, 1.5, 2.0, 2.5)
ENVIRONMENTAL_TIMES = (10.0, 20.0, 31.0, 40.0, 50.0, 60.0)


def environmental(x: np.ndarray) -> np.ndarray:
    """Concentration of a pollutant at 5 places x 6 times: (n, 4) -> (n, 30), place-major.

    C(s, t) = M / sqrt(4 pi D t) exp(-s^2 / (4 D t))
              + M / sqrt(4 pi D (t - tau)) exp(-(s - L)^2 / (4 D (t - tau))) [tau < t],
    a mass M spilled at s = 0 at t = 0 and again at s = L at t = tau, diffusing with rate D,
    read at s in ENVIRONMENTAL_PLACES and t in ENVIRONMENTAL_TIMES. A vector output whose
    entries differ by orders of magnitude.

    Ref: N. Bliznyuk, D. Ruppert, C. Shoemaker, R. Regis, S. Wild, P. Mugunthan, "Bayesian
    calibration and uncertainty analysis for computationally expensive models using
    optimization and radial basis function approximation", J. Comput. Graph. Stat. 17 (2008)
    270-294; VLSE "environ".
    """
    m, d, length, tau = (c[:, None, None] for c in _columns(x, ENVIRONMENTAL_NAMES, "environmental").T)
    s = np.asarray(ENVIRONMENTAL_PLACES)[None, :, None]
    t = np.asarray(ENVIRONMENTAL_TIMES)[None, None, :]
    first = m / np.sqrt(4 * np.pi * d * t) * np.exp(-(s**2) / (4 * d * t))
    after = np.maximum(t - tau, 1e-300)  # the second spill's term is used only where t > tau
    second = m / np.sqrt(4 * np.pi * d * after) * np.exp(-((s - length) ** 2) / (4 * d * after))
    c = first + np.where(t > tau, second, 0.0)
    return c.reshape(len(c), -1)


def environmental_output_names() -> tuple[str, ...]:
    """Names of `environmental`'s 30 outputs, e.g. "C_s0.5_t31", in its column order."""
    return tuple(f"C_s{s:g}_t{t:g}" for s in ENVIRONMENTAL_PLACES for t in ENVIRONMENTAL_TIMES)


# -- Sobol' G-function ----------------------------------------------------------------------

SOBOL_G_A = (0.0, 1.0, 4.5, 9.0, 99.0, 99.0, 99.0, 99.0)
SOBOL_G_NAMES = tuple(f"x{i}" for i in range(1, len(SOBOL_G_A) + 1))


def sobol_g(x: np.ndarray) -> np.ndarray:
    """Sobol's G-function on [0, 1]^8: (n, 8) -> (n,).

    f = prod_i (|4 x_i - 2| + a_i) / (1 + a_i) with a = (0, 1, 4.5, 9, 99, 99, 99, 99): a
    product of V-shaped factors, each with a kink at x_i = 1/2. The smaller a_i, the more
    input i matters (the last four barely do); with a_1 = 0 the function is zero on the whole
    plane x1 = 1/2. Its mean over the cube is 1.

    Ref: A. Saltelli, I. M. Sobol', "About the use of rank transformation in sensitivity
    analysis of model output", Reliab. Eng. Syst. Saf. 50 (1995) 225-239; VLSE "gfunc".
    """
    x = _columns(x, SOBOL_G_NAMES, "sobol_g")
    a = np.asarray(SOBOL_G_A)
    return np.prod((np.abs(4 * x - 2) + a) / (1 + a), axis=1)


# -- Welch et al. (1992), 20-D ---------------------------------------------------------------

WELCH_NAMES = tuple(f"x{i}" for i in range(1, 21))
WELCH_DOMAIN: Domain = ((-0.5,) * 20, (0.5,) * 20)


def welch(x: np.ndarray) -> np.ndarray:
    """Welch et al.'s screening function on [-0.5, 0.5]^20: (n, 20) -> (n,).

    f = 5 x12 / (1 + x1) + 5 (x4 - x20)^2 + x5 + 40 x19^3 - 5 x19 + 0.05 x2 + 0.08 x3 - 0.03 x6
        + 0.03 x7 - 0.09 x9 - 0.01 x10 - 0.07 x11 + 0.25 x13^2 - 0.04 x14 + 0.06 x15 - 0.01 x17
        - 0.03 x18:
    a few strong inputs with interactions and a cubic, a dozen weak linear ones, x8 and x16
    inert.

    Ref: W. J. Welch, R. J. Buck, J. Sacks, H. P. Wynn, T. J. Mitchell, M. D. Morris,
    "Screening, predicting, and computer experiments", Technometrics 34 (1992) 15-25; VLSE
    "welchetal92".
    """
    x = _columns(x, WELCH_NAMES, "welch")
    c = {i + 1: x[:, i] for i in range(20)}
    return (5 * c[12] / (1 + c[1]) + 5 * (c[4] - c[20]) ** 2 + c[5] + 40 * c[19] ** 3 - 5 * c[19]
            + 0.05 * c[2] + 0.08 * c[3] - 0.03 * c[6] + 0.03 * c[7] - 0.09 * c[9] - 0.01 * c[10]
            - 0.07 * c[11] + 0.25 * c[13] ** 2 - 0.04 * c[14] + 0.06 * c[15] - 0.01 * c[17] - 0.03 * c[18])


# -- Dette & Pepelyshev (2010), 8-D ------------------------------------------------------------

DETTE_PEPELYSHEV_NAMES = tuple(f"x{i}" for i in range(1, 9))


def dette_pepelyshev(x: np.ndarray) -> np.ndarray:
    """Dette & Pepelyshev's 8-D function on [0, 1]^8: (n, 8) -> (n,).

    f = 4 (x1 - 2 + 8 x2 - 8 x2^2)^2 + (3 - 4 x2)^2 + 16 sqrt(x3 + 1) (2 x3 - 1)^2
        + sum_{i=4}^{8} i ln(1 + sum_{j=3}^{i} x_j):
    strongly curved in x1..x3, gently logarithmic in the rest.

    Ref: H. Dette, A. Pepelyshev, "Generalized Latin hypercube design for computer
    experiments", Technometrics 52 (2010) 421-429; VLSE "detpep108d".
    """
    x = _columns(x, DETTE_PEPELYSHEV_NAMES, "dette_pepelyshev")
    x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
    partial = np.cumsum(x[:, 2:], axis=1)[:, 1:]  # sum_{j=3}^{i} x_j for i = 4..8, (n, 5)
    return (4 * (x1 - 2 + 8 * x2 - 8 * x2**2) ** 2 + (3 - 4 * x2) ** 2 + 16 * np.sqrt(x3 + 1) * (2 * x3 - 1) ** 2
            + np.sum(np.arange(4, 9) * np.log1p(partial), axis=1))


# -- Gramacy & Lee (2009), 6-D ----------------------------------------------------------------

GRAMACY_LEE_NAMES = tuple(f"x{i}" for i in range(1, 7))


def gramacy_lee(x: np.ndarray) -> np.ndarray:
    """Gramacy & Lee's 6-D function on [0, 1]^6: (n, 6) -> (n,).

    f = exp(sin((0.9 (x1 + 0.48))^10)) + x2 x3 + x4: flat in x1 over most of its range, then
    oscillating ever faster as x1 -> 1; x5 and x6 are inert.

    Ref: R. B. Gramacy, H. K. H. Lee, "Adaptive design and analysis of supercomputer
    experiments", Technometrics 51 (2009) 130-145; VLSE "grlee09".
    """
    x = _columns(x, GRAMACY_LEE_NAMES, "gramacy_lee")
    return np.exp(np.sin((0.9 * (x[:, 0] + 0.48)) ** 10)) + x[:, 1] * x[:, 2] + x[:, 3]


# -- Franke, Currin and Branin: 2-D -----------------------------------------------------------

PLANE_NAMES = ("x1", "x2")
BRANIN_DOMAIN: Domain = ((-5.0, 0.0), (10.0, 15.0))


def franke(x: np.ndarray) -> np.ndarray:
    """Franke's bivariate test function on [0, 1]^2: (n, 2) -> (n,): two Gaussian bumps, a
    broad ridge and a small dip.

    Ref: R. Franke, "A critical comparison of some methods for interpolation of scattered
    data", Naval Postgraduate School report NPS-53-79-003 (1979); VLSE "franke2d".
    """
    x1, x2 = (9 * _columns(x, PLANE_NAMES, "franke")).T
    return (0.75 * np.exp(-((x1 - 2) ** 2) / 4 - (x2 - 2) ** 2 / 4)
            + 0.75 * np.exp(-((x1 + 1) ** 2) / 49 - (x2 + 1) / 10)
            + 0.5 * np.exp(-((x1 - 7) ** 2) / 4 - (x2 - 3) ** 2 / 4)
            - 0.2 * np.exp(-((x1 - 4) ** 2) - (x2 - 7) ** 2))


def currin(x: np.ndarray) -> np.ndarray:
    """Currin et al.'s exponential function on [0, 1]^2: (n, 2) -> (n,).

    f = (1 - exp(-1 / (2 x2))) (2300 x1^3 + 1900 x1^2 + 2092 x1 + 60) / (100 x1^3 + 500 x1^2
    + 4 x1 + 20), steep near x2 = 0 (where the first factor tends to 1).

    Ref: C. Currin, T. Mitchell, M. Morris, D. Ylvisaker, "Bayesian prediction of
    deterministic functions, with applications to the design and analysis of computer
    experiments", J. Am. Stat. Assoc. 86 (1991) 953-963; VLSE "curretal88exp".
    """
    x1, x2 = _columns(x, PLANE_NAMES, "currin").T
    with np.errstate(divide="ignore"):
        decay = -np.expm1(-1 / (2 * x2))  # x2 = 0 gives 1, the limit
    return decay * (2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60) / (100 * x1**3 + 500 * x1**2 + 4 * x1 + 20)


def branin(x: np.ndarray) -> np.ndarray:
    """The Branin-Hoo function on [-5, 10] x [0, 15]: (n, 2) -> (n,).

    f = (x2 - 5.1 x1^2 / (4 pi^2) + 5 x1 / pi - 6)^2 + 10 (1 - 1 / (8 pi)) cos x1 + 10, with
    three global minima of 0.397887 (at (-pi, 12.275), (pi, 2.275) and (9.42478, 2.475)).

    Ref: F. H. Branin, "Widely convergent method for finding multiple solutions of simultaneous
    nonlinear equations", IBM J. Res. Dev. 16 (1972) 504-522; VLSE "branin".
    """
    x1, x2 = _columns(x, PLANE_NAMES, "branin").T
    return ((x2 - 5.1 * x1**2 / (4 * np.pi**2) + 5 * x1 / np.pi - 6) ** 2
            + 10 * (1 - 1 / (8 * np.pi)) * np.cos(x1) + 10)


# -- An SIR epidemic --------------------------------------------------------------------------

SIR_NAMES = ("beta", "gamma", "i0")
SIR_DOMAIN: Domain = ((0.15, 0.05, 1e-4), (0.6, 0.25, 1e-2))
SIR_DAYS = tuple(float(d) for d in range(10, 130, 10))
SIR_STEPS_PER_DAY = 10


def sir_epidemic(x: np.ndarray) -> np.ndarray:
    """The infected fraction of a population at days 10, 20, ..., 120: (n, 3) -> (n, 12).

    The Kermack-McKendrick SIR model, s' = -beta s i, i' = beta s i - gamma i, from
    (s, i) = (1 - i0, i0) at day 0, with transmission rate `beta` and recovery rate `gamma`
    [1/day] (basic reproduction number beta / gamma from 0.6 to 12) and initial infected
    fraction `i0`. Integrated by classical Runge-Kutta with 10 steps a day, vectorised over
    runs. Outputs span many orders of magnitude: an outbreak peaks within weeks where
    beta / gamma is large and dies out where it is below 1.

    Ref: W. O. Kermack, A. G. McKendrick, "A contribution to the mathematical theory of
    epidemics", Proc. R. Soc. Lond. A 115 (1927) 700-721.
    """
    beta, gamma, i0 = _columns(x, SIR_NAMES, "sir_epidemic").T

    def slope(_t, s, i):
        infections = beta * s * i
        return -infections, infections - gamma * i

    states = _runge_kutta(slope, (1.0 - i0, i0), SIR_DAYS, SIR_STEPS_PER_DAY)
    return np.stack([i for _, i in states], axis=1)


def _runge_kutta(slope, state: tuple[np.ndarray, ...], times: Sequence[float],
                 steps_per_unit: int) -> list[tuple[np.ndarray, ...]]:
    """The state of u' = slope(t, *u) from u(0) = state at each of `times` (ascending), by
    classical fourth-order Runge-Kutta with `steps_per_unit` steps a unit of time, vectorised
    over runs: each component of the state is an (n,) array."""
    dt = 1.0 / steps_per_unit
    out, step = [], 0
    for time in times:
        while step < round(time * steps_per_unit):
            t = step * dt
            k1 = slope(t, *state)
            k2 = slope(t + dt / 2, *(u + dt / 2 * k for u, k in zip(state, k1)))
            k3 = slope(t + dt / 2, *(u + dt / 2 * k for u, k in zip(state, k2)))
            k4 = slope(t + dt, *(u + dt * k for u, k in zip(state, k3)))
            state = tuple(u + dt / 6 * (a + 2 * b + 2 * c + d) for u, a, b, c, d in zip(state, k1, k2, k3, k4))
            step += 1
        out.append(state)
    return out


# -- A chaos indicator: MEGNO of the standard map ----------------------------------------------

STANDARD_MAP_NAMES = ("K", "theta0", "p0")
STANDARD_MAP_DOMAIN: Domain = ((0.2, 0.0, 0.0), (0.97, 2 * math.pi, 2 * math.pi))
STANDARD_MAP_ITERATIONS = 500


def standard_map_megno(x: np.ndarray) -> np.ndarray:
    """The MEGNO chaos indicator of an orbit of Chirikov's standard map: (n, 3) -> (n,).

    The map p' = p + K sin(theta), theta' = theta + p' (both angles mod 2 pi) is iterated
    `STANDARD_MAP_ITERATIONS` times from (theta0, p0) with kick strength K, together with its
    tangent map, and the mean exponential growth factor of nearby orbits (MEGNO) is

        Y(N) = 2/N sum_{k<=N} k ln(|d_k| / |d_{k-1}|),   <Y>(N) = 1/N sum_{k<=N} Y(k),

    for a tangent vector d_k. <Y> tends to 2 on a quasi-periodic orbit (d grows linearly), to 0
    on a stable periodic one, and grows as lambda N / 2 on a chaotic orbit of Lyapunov exponent
    lambda: about 2 over most of the box, with thin chaotic layers along the resonances' separatrices
    (about 9% of the box below the last invariant circle's breakup at K = 0.9716) where it
    reaches tens.

    Refs: B. V. Chirikov, "A universal instability of many-dimensional oscillator systems",
    Phys. Rep. 52 (1979) 263-379; P. M. Cincotta, C. Simo, "Simple tools to study global
    dynamics in non-axisymmetric galactic potentials - I", A&AS 147 (2000) 205-228.
    """
    kick, theta, p = _columns(x, STANDARD_MAP_NAMES, "standard_map_megno").T
    d_theta, d_p = np.full(len(kick), math.sqrt(0.5)), np.full(len(kick), math.sqrt(0.5))
    weighted_growth = np.zeros(len(kick))
    megno_sum = np.zeros(len(kick))
    for k in range(1, STANDARD_MAP_ITERATIONS + 1):
        d_p = d_p + kick * np.cos(theta) * d_theta
        d_theta = d_theta + d_p
        p = p + kick * np.sin(theta)
        theta = theta + p
        length = np.hypot(d_theta, d_p)
        weighted_growth += k * np.log(length)
        d_theta, d_p = d_theta / length, d_p / length  # the tangent map is linear: keep |d| at 1
        megno_sum += 2.0 / k * weighted_growth
    return megno_sum / STANDARD_MAP_ITERATIONS


# -- A driven, damped pendulum ------------------------------------------------------------------

PENDULUM_NAMES = ("damping", "drive", "frequency", "theta0")
PENDULUM_DOMAIN: Domain = ((0.1, 0.0, 0.5, -1.0), (1.0, 0.8, 1.5, 1.0))
PENDULUM_TIMES = tuple(float(t) for t in np.linspace(0.5, 15.0, 30))
PENDULUM_STEPS_PER_UNIT = 100


def driven_pendulum(x: np.ndarray) -> np.ndarray:
    """The angle [rad] of a driven, damped pendulum at 30 times from 0.5 to 15: (n, 4) -> (n, 30).

    theta'' = -damping theta' - sin(theta) + drive cos(frequency t), from rest at theta0 (time
    in units of the small-swing period over 2 pi), integrated by classical Runge-Kutta with 100
    steps a unit, vectorised over runs. Most runs swing and settle into the drive's rhythm; a
    few (weak damping, a strong drive near resonance) swing over the top, and their angle keeps
    growing by 2 pi a turn: thin regions of the box where the outputs are large and change fast.

    Ref: G. L. Baker, J. P. Gollub, "Chaotic Dynamics: An Introduction", 2nd ed., Cambridge
    University Press (1996), ch. 3.
    """
    damping, drive, frequency, theta0 = _columns(x, PENDULUM_NAMES, "driven_pendulum").T

    def slope(t, theta, omega):
        return omega, -damping * omega - np.sin(theta) + drive * np.cos(frequency * t)

    states = _runge_kutta(slope, (theta0, np.zeros(len(theta0))), PENDULUM_TIMES, PENDULUM_STEPS_PER_UNIT)
    return np.stack([theta for theta, _ in states], axis=1)


# -- Predators and prey: Lotka-Volterra ----------------------------------------------------------

LOTKA_NAMES = ("prey_growth", "predation", "predator_death", "conversion")
LOTKA_DOMAIN: Domain = ((0.5, 0.05, 0.5, 0.05), (1.5, 0.2, 1.5, 0.2))
LOTKA_TIME = 15.0
LOTKA_STEPS_PER_UNIT = 100


def lotka_volterra(x: np.ndarray) -> np.ndarray:
    """The predator population at time 15 of the Lotka-Volterra equations: (n, 4) -> (n,).

    u' = a u - b u v (prey), v' = d u v - c v (predators), from (u, v) = (10, 5), with prey
    growth a, predation b, predator death c and conversion d; integrated by classical
    Runge-Kutta with 100 steps a unit, vectorised over runs. Every orbit cycles, with a period
    and an amplitude set by the four rates, so the population at a fixed time oscillates across
    the box; large where an orbit's peak falls near t = 15 (about 1 to 80).

    Refs: A. J. Lotka, "Elements of Physical Biology", Williams & Wilkins (1925); V. Volterra,
    "Fluctuations in the abundance of a species considered mathematically", Nature 118 (1926)
    558-560.
    """
    a, b, c, d = _columns(x, LOTKA_NAMES, "lotka_volterra").T

    def slope(_t, prey, predators):
        return a * prey - b * prey * predators, d * prey * predators - c * predators

    ((_, predators),) = _runge_kutta(slope, (np.full(len(a), 10.0), np.full(len(a), 5.0)), (LOTKA_TIME,),
                                     LOTKA_STEPS_PER_UNIT)
    return predators


# -- A resonance: the steady amplitude of a driven, damped oscillator ---------------------------

RESONANCE_NAMES = ("frequency_ratio", "damping_ratio", "force")
RESONANCE_DOMAIN: Domain = ((0.5, 0.01, 0.5), (1.5, 0.5, 2.0))


def resonance(x: np.ndarray) -> np.ndarray:
    """The steady-state amplitude of a driven, damped harmonic oscillator: (n, 3) -> (n,).

    F / sqrt((1 - r^2)^2 + (2 zeta r)^2) for the drive's frequency r in units of the natural
    one, damping ratio zeta (log-uniform over 0.01 to 0.5 in the problem) and force F in units
    of the spring's: about F over most of the box, up to F / (2 zeta) = 100 F in a ridge along
    r = 1 whose width shrinks with zeta.

    Ref: L. D. Landau, E. M. Lifshitz, "Mechanics", 3rd ed., Pergamon (1976), section 26.
    """
    ratio, zeta, force = _columns(x, RESONANCE_NAMES, "resonance").T
    return force / np.sqrt((1 - ratio**2) ** 2 + (2 * zeta * ratio) ** 2)


# -- A projectile with air drag --------------------------------------------------------------

PROJECTILE_NAMES = ("speed", "elevation_deg", "drag")
PROJECTILE_DOMAIN: Domain = ((10.0, 10.0, 1e-4), (100.0, 80.0, 1e-1))
PROJECTILE_STEPS = 800
GRAVITY = 9.81


def projectile_range(x: np.ndarray) -> np.ndarray:
    """The range [m] of a projectile with quadratic air drag, on level ground: (n, 3) -> (n,).

    r'' = -g e_z - k |r'| r' from the origin at speed v0 [m/s] and elevation [degrees], drag
    k [1/m] (log-uniform over 1e-4 to 0.1 in the problem: nearly a vacuum parabola to a
    thousandfold loss of range). Classical Runge-Kutta over 1.2 times the vacuum flight time in
    800 steps, vectorised over runs; the landing point is interpolated between the two steps
    that straddle the ground.

    Ref: J. R. Taylor, "Classical Mechanics", University Science Books (2005), section 2.4.
    """
    speed, elevation, drag = _columns(x, PROJECTILE_NAMES, "projectile_range").T
    angle = np.radians(elevation)
    dt = 1.2 * 2 * speed * np.sin(angle) / GRAVITY / PROJECTILE_STEPS

    def slope(state):
        _, _, vx, vz = state
        v = np.hypot(vx, vz)
        return np.stack([vx, vz, -drag * v * vx, -GRAVITY - drag * v * vz])

    state = np.stack([np.zeros_like(speed), np.zeros_like(speed), speed * np.cos(angle), speed * np.sin(angle)])
    landed = np.full(len(speed), np.nan)
    for _ in range(PROJECTILE_STEPS):
        k1 = slope(state)
        k2 = slope(state + dt / 2 * k1)
        k3 = slope(state + dt / 2 * k2)
        k4 = slope(state + dt * k3)
        after = state + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        down = np.isnan(landed) & (after[1] < 0)
        fraction = state[1] / np.maximum(state[1] - after[1], 1e-300)
        landed = np.where(down, state[0] + fraction * (after[0] - state[0]), landed)
        state = after
    if np.isnan(landed).any():
        raise RuntimeError(f"{int(np.isnan(landed).sum())} projectiles did not land within 1.2 vacuum flight times")
    return landed


# -- A ringdown: a damped oscillation sampled in time ------------------------------------------

RINGDOWN_NAMES = ("frequency", "damping", "phase")
RINGDOWN_DOMAIN: Domain = ((0.5, 0.05, 0.0), (3.0, 1.0, 2 * math.pi))
RINGDOWN_TIMES = tuple(float(t) for t in np.linspace(0.0, 10.0, 100))


def ringdown(x: np.ndarray) -> np.ndarray:
    """A damped sinusoid exp(-damping t) cos(frequency t + phase) at 100 times from 0 to 10:
    (n, 3) -> (n, 100).

    The signal of a struck resonator (a bell, a quasi-normal mode of a perturbed black hole)
    with angular frequency 0.5 to 3, damping rate 0.05 to 1 and a periodic phase: early outputs
    vary slowly over the box, late ones turn through 25 radians across the frequency's range
    while their amplitude fades where the damping is strong.

    Ref: E. Berti, V. Cardoso, A. O. Starinets, "Quasinormal modes of black holes and black
    branes", Class. Quantum Grav. 26 (2009) 163001.
    """
    frequency, damping, phase = _columns(x, RINGDOWN_NAMES, "ringdown").T[:, :, None]
    times = np.asarray(RINGDOWN_TIMES)[None, :]
    return np.exp(-damping * times) * np.cos(frequency * times + phase)


# -- Over the top: does a damped pendulum flip? ------------------------------------------------

FLIP_NAMES = ("theta0", "omega0", "damping")
FLIP_DOMAIN: Domain = ((-math.pi, -3.0, 0.01), (math.pi, 3.0, 1.0))
FLIP_CHECKS = tuple(float(t) for t in np.arange(0.1, 20.05, 0.1))
FLIP_STEPS_PER_UNIT = 100


def pendulum_flip(x: np.ndarray) -> np.ndarray:
    """Whether a damped pendulum swings over the top within 20 time units: (n, 3) -> (n,) of
    0 (it stays in its well) or 1 (it flips).

    theta'' = -damping theta' - sin(theta) from angle theta0 in [-pi, pi] and angular velocity
    omega0, time in units of the small-swing period over 2 pi, damping log-uniform over 0.01 to
    1 in the problem; classical Runge-Kutta with 100 steps a unit, checked every 0.1 for
    |theta| > pi. The boundary between the classes follows the separatrix, thinly interleaved
    where the damping is weak (about 40 % of the box flips).

    Ref: G. L. Baker, J. P. Gollub, "Chaotic Dynamics: An Introduction", 2nd ed., Cambridge
    University Press (1996), ch. 2.
    """
    theta0, omega0, damping = _columns(x, FLIP_NAMES, "pendulum_flip").T

    def slope(_t, theta, omega):
        return omega, -damping * omega - np.sin(theta)

    states = _runge_kutta(slope, (theta0, omega0), FLIP_CHECKS, FLIP_STEPS_PER_UNIT)
    return np.any([np.abs(theta) > math.pi for theta, _ in states], axis=0).astype(np.float64)
