"""The test functions as alframe oracles over their documented input boxes.

Each constructor returns a `FunctionOracle` whose `run(queries)` takes shape (n, dim) and gives
y of shape (n, 1); the Hydra configs in conf/simulator/ name these constructors as `_target_`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from alframe.oracle import FunctionOracle, OutputSpec
from alframe.space import Box
from simulators.testfunctions.functions import (
    BOREHOLE_DOMAIN,
    BOREHOLE_NAMES,
    BRANIN_DOMAIN,
    CUBIC_DOMAIN,
    CUBIC_NAMES,
    DETTE_PEPELYSHEV_NAMES,
    ENVIRONMENTAL_DOMAIN,
    ENVIRONMENTAL_NAMES,
    ENVIRONMENTAL_PLACES,
    ENVIRONMENTAL_TIMES,
    FLIP_DOMAIN,
    FLIP_NAMES,
    GRAMACY_LEE_NAMES,
    HARTMANN6_NAMES,
    HETEROSCEDASTIC_DOMAIN,
    HETEROSCEDASTIC_NAMES,
    ISHIGAMI_DOMAIN,
    ISHIGAMI_NAMES,
    LOTKA_DOMAIN,
    LOTKA_NAMES,
    OTL_DOMAIN,
    OTL_NAMES,
    PISTON_DOMAIN,
    PISTON_NAMES,
    PENDULUM_DOMAIN,
    PENDULUM_NAMES,
    PENDULUM_TIMES,
    PLANE_NAMES,
    PROJECTILE_DOMAIN,
    PROJECTILE_NAMES,
    RESONANCE_DOMAIN,
    RESONANCE_NAMES,
    RINGDOWN_DOMAIN,
    RINGDOWN_NAMES,
    RINGDOWN_TIMES,
    ROBOT_ARM_DOMAIN,
    ROBOT_ARM_NAMES,
    SEED_LIMIT,
    SIR_DAYS,
    SIR_DOMAIN,
    SIR_NAMES,
    SOBOL_G_NAMES,
    STANDARD_MAP_DOMAIN,
    STANDARD_MAP_NAMES,
    WELCH_DOMAIN,
    WELCH_NAMES,
    WING_DOMAIN,
    WING_NAMES,
    FailsWhere,
    HeteroscedasticSine,
    Ishigami,
    borehole,
    branin,
    cubic_root,
    currin,
    dette_pepelyshev,
    driven_pendulum,
    environmental,
    environmental_output_names,
    franke,
    friedman,
    friedman_corner,
    friedman_names,
    genz_discontinuous_function,
    genz_gaussian_peak_function,
    genz_names,
    gramacy_lee,
    hartmann6,
    ishigami_hole,
    lotka_volterra,
    otl_circuit,
    pendulum_flip,
    piston,
    projectile_range,
    resonance,
    ringdown,
    robot_arm,
    sine_mean,
    sir_epidemic,
    sobol_g,
    standard_map_megno,
    welch,
    wing_weight,
)


def _oracle(fn, names: Sequence[str], domain, output: str, periodic: Sequence[str] = ()) -> FunctionOracle:
    lower, upper = domain
    return FunctionOracle(fn=fn, space=Box(names=tuple(names), lower=lower, upper=upper, periodic=tuple(periodic)),
                          outputs=OutputSpec(names=(output,)))


def _finite(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def make_ishigami(a: float = 7.0, b: float = 0.1) -> FunctionOracle:
    """Ishigami & Homma (1990) on [-pi, pi]^3, inputs (x1, x2, x3), output y."""
    return _oracle(Ishigami(_finite("a", a), _finite("b", b)), ISHIGAMI_NAMES, ISHIGAMI_DOMAIN, "y")


def make_borehole() -> FunctionOracle:
    """The borehole water flow (Harper & Gupta 1983), 8 inputs, output flow_rate [m^3/yr]."""
    return _oracle(borehole, BOREHOLE_NAMES, BOREHOLE_DOMAIN, "flow_rate")


def make_otl_circuit() -> FunctionOracle:
    """The OTL circuit (Ben-Ari & Steinberg 2007), 6 inputs, output Vm [V]."""
    return _oracle(otl_circuit, OTL_NAMES, OTL_DOMAIN, "Vm")


def make_piston() -> FunctionOracle:
    """The piston cycle time (Kenett & Zacks 1998), 7 inputs, output cycle_time [s]."""
    return _oracle(piston, PISTON_NAMES, PISTON_DOMAIN, "cycle_time")


def make_friedman(n_inputs: int = 5) -> FunctionOracle:
    """Friedman #1 on [0, 1]^n_inputs (n_inputs >= 5; the ones past x5 are inert), output y."""
    names = friedman_names(n_inputs)
    return _oracle(friedman, names, ((0.0,) * n_inputs, (1.0,) * n_inputs), "y")


def make_friedman_corner() -> FunctionOracle:
    """Friedman #1 on [0, 1]^5, failing (NaN) where x1 + x2 > 1.4: 18 % of the box, a corner."""
    return _oracle(FailsWhere(friedman, friedman_corner), friedman_names(5), ((0.0,) * 5, (1.0,) * 5), "y")


def make_ishigami_hole() -> FunctionOracle:
    """The Ishigami function (a = 7, b = 0.1) failing (NaN) where x1^2 + x2^2 < 1.5^2: 18 % of the
    box, a hollow inside it."""
    return _oracle(FailsWhere(Ishigami(), ishigami_hole), ISHIGAMI_NAMES, ISHIGAMI_DOMAIN, "y")


def make_cubic_root() -> FunctionOracle:
    """The largest real root of t^3 + p t + q, plus c, over p in [-6, -0.5], q in [-2, 2], c in
    [0, 1]; every run fails where only one root is real (24 % of the box), and the output is
    steepest along one edge of that region."""
    return _oracle(cubic_root, CUBIC_NAMES, CUBIC_DOMAIN, "root")


def make_genz_discontinuous(dim: int = 2, a: float | Sequence[float] = 5.0,
                       u: float | Sequence[float] = 0.5) -> FunctionOracle:
    """Genz's (1984) discontinuous integrand on [0, 1]^dim, output y (VLSE defaults a = 5, u = 0.5)."""
    fn = genz_discontinuous_function(dim, a, u)
    return _oracle(fn, genz_names(dim), ((0.0,) * dim, (1.0,) * dim), "y")


def make_genz_gaussian_peak(dim: int = 2, a: float | Sequence[float] = 15.0,
                       u: float | Sequence[float] = 0.5) -> FunctionOracle:
    """Genz's (1984) Gaussian peak on [0, 1]^dim, output y; a = 15 gives a peak of standard
    deviation 0.047 along each input (VLSE's default a = 5 gives 0.14)."""
    fn = genz_gaussian_peak_function(dim, a, u)
    return _oracle(fn, genz_names(dim), ((0.0,) * dim, (1.0,) * dim), "y")


def make_wing_weight() -> FunctionOracle:
    """A light aircraft's wing weight (Forrester et al. 2008), 10 inputs, output weight [lb]."""
    return _oracle(wing_weight, WING_NAMES, WING_DOMAIN, "weight")


def make_robot_arm() -> FunctionOracle:
    """The robot arm's reach (An & Owen 2001), 4 angles and 4 lengths, output distance. The
    angles span one turn each and are declared periodic."""
    return _oracle(robot_arm, ROBOT_ARM_NAMES, ROBOT_ARM_DOMAIN, "distance", periodic=ROBOT_ARM_NAMES[:4])


def make_hartmann6() -> FunctionOracle:
    """The 6-D Hartmann function on [0, 1]^6, output y."""
    return _oracle(hartmann6, HARTMANN6_NAMES, ((0.0,) * 6, (1.0,) * 6), "y")


def make_environmental() -> FunctionOracle:
    """The twice-spilled pollutant (Bliznyuk et al. 2008), 4 inputs (M, D, L, tau), 30 outputs:
    the concentration at 5 places x 6 times, each output's (place, time) as its coordinate."""
    lower, upper = ENVIRONMENTAL_DOMAIN
    coords = tuple(f"s={s:g} t={t:g}" for s in ENVIRONMENTAL_PLACES for t in ENVIRONMENTAL_TIMES)
    return FunctionOracle(fn=environmental, space=Box(names=ENVIRONMENTAL_NAMES, lower=lower, upper=upper),
                          outputs=OutputSpec(names=environmental_output_names(), coords=coords,
                                             coord_name="place_time", units="concentration"))


def _check_seed(seed) -> int:
    integer = isinstance(seed, int | np.integer) and not isinstance(seed, bool)
    if not integer or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def make_heteroscedastic_sine(sd_low: float = 0.5, sd_high: float = 1.5, seed: int = 0) -> FunctionOracle:
    """2 sin(2 pi x) on [0, 1] plus Gaussian noise whose sd rises linearly from `sd_low` to
    `sd_high`; the noise is a pure function of `seed` and the query's bytes."""
    sd_low, sd_high = _finite("sd_low", sd_low), _finite("sd_high", sd_high)
    if sd_low < 0 or sd_high < 0:
        raise ValueError(f"noise sds must be >= 0, got sd_low={sd_low}, sd_high={sd_high}")
    fn = HeteroscedasticSine(sd_low, sd_high, _check_seed(seed))
    return _oracle(fn, HETEROSCEDASTIC_NAMES, HETEROSCEDASTIC_DOMAIN, "y")


def heteroscedastic_sine_test_set(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The held-out set of `make_heteroscedastic_sine`: n uniform inputs drawn with `seed` and the
    noise-free mean at them. Returns x (n, 1), y (n, 1)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"test-set size n must be an integer >= 1, got {n!r}")
    lower, upper = HETEROSCEDASTIC_DOMAIN
    x = Box(names=HETEROSCEDASTIC_NAMES, lower=lower, upper=upper).draw(n, seed=_check_seed(seed), method="uniform")
    return x, sine_mean(x)[:, None]


def _unit_cube(fn, names: Sequence[str], output: str = "y") -> FunctionOracle:
    return _oracle(fn, names, ((0.0,) * len(names), (1.0,) * len(names)), output)


def make_sobol_g() -> FunctionOracle:
    """Sobol's G-function on [0, 1]^8 (a = 0, 1, 4.5, 9, 99, 99, 99, 99), output y."""
    return _unit_cube(sobol_g, SOBOL_G_NAMES)


def make_welch() -> FunctionOracle:
    """Welch et al.'s (1992) 20-input screening function on [-0.5, 0.5]^20, output y."""
    return _oracle(welch, WELCH_NAMES, WELCH_DOMAIN, "y")


def make_dette_pepelyshev() -> FunctionOracle:
    """Dette & Pepelyshev's (2010) 8-input curved function on [0, 1]^8, output y."""
    return _unit_cube(dette_pepelyshev, DETTE_PEPELYSHEV_NAMES)


def make_gramacy_lee() -> FunctionOracle:
    """Gramacy & Lee's (2009) 6-input function on [0, 1]^6 (x5, x6 inert), output y."""
    return _unit_cube(gramacy_lee, GRAMACY_LEE_NAMES)


def make_franke() -> FunctionOracle:
    """Franke's (1979) bivariate function on [0, 1]^2, output y."""
    return _unit_cube(franke, PLANE_NAMES)


def make_currin() -> FunctionOracle:
    """Currin et al.'s (1991) exponential function on [0, 1]^2, output y."""
    return _unit_cube(currin, PLANE_NAMES)


def make_branin() -> FunctionOracle:
    """The Branin-Hoo function on [-5, 10] x [0, 15], output y."""
    return _oracle(branin, PLANE_NAMES, BRANIN_DOMAIN, "y")


def make_sir_epidemic() -> FunctionOracle:
    """An SIR epidemic: inputs beta, gamma [1/day] and the initial infected fraction i0 (drawn
    on a log scale); 12 outputs, the infected fraction at days 10, 20, ..., 120 (the day as
    each output's coordinate)."""
    lower, upper = SIR_DOMAIN
    return FunctionOracle(fn=sir_epidemic, space=Box(names=SIR_NAMES, lower=lower, upper=upper, log=("i0",)),
                          outputs=OutputSpec(names=tuple(f"infected_day{d:g}" for d in SIR_DAYS), coords=SIR_DAYS,
                                             coord_name="day", units="fraction of the population"))


def make_standard_map() -> FunctionOracle:
    """The MEGNO chaos indicator of a standard-map orbit: inputs the kick strength K and the
    starting angle theta0 and momentum p0 (both periodic), output megno (about 2 where the
    orbit is regular, tens in the thin chaotic layers)."""
    lower, upper = STANDARD_MAP_DOMAIN
    return FunctionOracle(fn=standard_map_megno,
                          space=Box(names=STANDARD_MAP_NAMES, lower=lower, upper=upper, periodic=("theta0", "p0")),
                          outputs=OutputSpec(names=("megno",)))


def make_driven_pendulum() -> FunctionOracle:
    """A driven, damped pendulum: inputs damping, drive amplitude and frequency and the starting
    angle theta0; 30 outputs, its angle at times 0.5 to 15 (the time as each output's
    coordinate)."""
    lower, upper = PENDULUM_DOMAIN
    return FunctionOracle(fn=driven_pendulum, space=Box(names=PENDULUM_NAMES, lower=lower, upper=upper),
                          outputs=OutputSpec(names=tuple(f"theta_t{t:.1f}" for t in PENDULUM_TIMES),
                                             coords=PENDULUM_TIMES, coord_name="time", units="rad"))


def make_lotka_volterra() -> FunctionOracle:
    """Predators and prey (Lotka-Volterra): inputs prey growth, predation, predator death and
    conversion rates; output predators, the predator population at time 15."""
    return _oracle(lotka_volterra, LOTKA_NAMES, LOTKA_DOMAIN, "predators")


def make_resonance() -> FunctionOracle:
    """The steady amplitude of a driven, damped oscillator: inputs the drive's frequency over
    the natural one, the damping ratio (drawn on a log scale) and the force; output amplitude."""
    lower, upper = RESONANCE_DOMAIN
    return FunctionOracle(fn=resonance,
                          space=Box(names=RESONANCE_NAMES, lower=lower, upper=upper, log=("damping_ratio",)),
                          outputs=OutputSpec(names=("amplitude",)))


def make_projectile() -> FunctionOracle:
    """A projectile with quadratic air drag: inputs speed [m/s], elevation [degrees] and drag
    [1/m] (drawn on a log scale); output range [m]."""
    lower, upper = PROJECTILE_DOMAIN
    return FunctionOracle(fn=projectile_range,
                          space=Box(names=PROJECTILE_NAMES, lower=lower, upper=upper, log=("drag",)),
                          outputs=OutputSpec(names=("range",), units="m"))


def make_ringdown() -> FunctionOracle:
    """A damped sinusoid: inputs angular frequency, damping rate and phase (periodic); 100
    outputs, the signal at times 0 to 10 (the time as each output's coordinate)."""
    lower, upper = RINGDOWN_DOMAIN
    return FunctionOracle(fn=ringdown, space=Box(names=RINGDOWN_NAMES, lower=lower, upper=upper, periodic=("phase",)),
                          outputs=OutputSpec(names=tuple(f"signal_t{t:.2f}" for t in RINGDOWN_TIMES),
                                             coords=RINGDOWN_TIMES, coord_name="time"))


def make_pendulum_flip() -> FunctionOracle:
    """Whether a damped pendulum swings over the top: inputs starting angle and angular
    velocity and the damping (drawn on a log scale); a classification, `stays` or `flips`."""
    lower, upper = FLIP_DOMAIN
    return FunctionOracle(fn=pendulum_flip, space=Box(names=FLIP_NAMES, lower=lower, upper=upper, log=("damping",)),
                          outputs=OutputSpec(names=("flipped",), task="classification", classes=("stays", "flips")))
