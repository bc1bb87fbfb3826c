"""Test functions from the simulation-experiment literature, and small simulators from other
fields, as alframe oracles.

Benchmarks nobody tuned the framework for: formulas, domains and parameter values as in
Surjanovic & Bingham's Virtual Library of Simulation Experiments (VLSE), each docstring citing
the original paper.

    >>> from simulators.testfunctions import make_borehole
    >>> oracle = make_borehole()                        # 8 inputs in their documented ranges
    >>> outcome = oracle.run(oracle.space.draw(4, seed=0))
    >>> outcome.y.shape, bool(outcome.ok.all())
    ((4, 1), True)

| constructor | inputs | what it tests |
|---|---|---|
| `make_ishigami(a=7, b=0.1)` | 3, [-pi, pi]^3 | strong non-linearity, an interaction |
| `make_borehole()` | 8, physical ranges | a smooth function with inputs of very different influence |
| `make_otl_circuit()` | 6 | a smooth, nearly additive function |
| `make_piston()` | 7 | a smooth function with strong interactions |
| `make_friedman(n_inputs=5)` | 5 or more, [0, 1]^d | sine interaction + quadratic + linear terms; inert inputs past x5 |
| `make_genz_discontinuous(dim=2)` | [0, 1]^dim | a jump to zero across two edges |
| `make_genz_gaussian_peak(dim=2, a=15)` | [0, 1]^dim | a narrow peak (sd 0.047) |
| `make_wing_weight()` | 10, physical ranges | a smooth function where four inputs carry almost all the variance |
| `make_robot_arm()` | 8, angles and lengths | periodic inputs, a kink where the arm folds back |
| `make_hartmann6()` | 6, [0, 1]^6 | four narrow anisotropic wells, near zero elsewhere |
| `make_environmental()` | 4 | a vector output: 30 concentrations (5 places x 6 times), one sharp just after a spill |
| `make_friedman_corner()`, `make_ishigami_hole()` | 5, 3 | failed runs (NaN) over 18 % of the box: a corner, a hollow inside |
| `make_cubic_root()` | 3 | failed runs over 24 % of the box, the output steepest beside them |
| `make_heteroscedastic_sine()` | 1, [0, 1] | noise sd rising 0.5 -> 1.5 across the box; `heteroscedastic_sine_test_set` is the noise-free mean |
| `make_sobol_g()` | 8, [0, 1]^8 | a product of kinked factors of very unequal weight |
| `make_welch()` | 20, [-0.5, 0.5]^20 | many inputs: a few strong ones with interactions, many weak, two inert |
| `make_dette_pepelyshev()` | 8, [0, 1]^8 | strong curvature in three inputs, gentle in five |
| `make_gramacy_lee()` | 6, [0, 1]^6 | flat, then ever faster oscillation along one input; two inert inputs |
| `make_franke()`, `make_currin()`, `make_branin()` | 2 | classic smooth surfaces (bumps, a steep edge, a curved valley) |
| `make_sir_epidemic()` | 3, one on a log scale | an epidemic's infected fraction at 12 days, outputs over many orders of magnitude |
| `make_standard_map()` | 3, two periodic | a chaos indicator (MEGNO): about 2 almost everywhere, tens in thin chaotic layers |
| `make_driven_pendulum()` | 4 | a vector output (the angle at 30 times); the few runs that swing over the top keep turning, 2 pi a turn |
| `make_lotka_volterra()` | 4 rates | predators at a fixed time: oscillates across the box, heavy upper tail |
| `make_resonance()` | 3, damping on a log scale | a resonance ridge up to 100x the output elsewhere, narrowing as the damping falls |
| `make_projectile()` | 3, drag on a log scale | a projectile's range with air drag, over three decades of drag |
| `make_ringdown()` | 3, the phase periodic | a vector output (a damped sinusoid at 100 times), late times oscillating fast in the frequency |
| `make_pendulum_flip()` | 3, damping on a log scale | a classification: does a damped pendulum swing over the top? |
"""

from simulators.testfunctions.functions import (
    BOREHOLE_DOMAIN,
    BOREHOLE_NAMES,
    ISHIGAMI_DOMAIN,
    OTL_DOMAIN,
    OTL_NAMES,
    PISTON_DOMAIN,
    PISTON_NAMES,
    CUBIC_DOMAIN,
    FailsWhere,
    cubic_root,
    GenzDiscontinuous,
    GenzGaussianPeak,
    HeteroscedasticSine,
    Ishigami,
    borehole,
    friedman,
    otl_circuit,
    piston,
    sine_mean,
    standard_normals,
)
from simulators.testfunctions.oracles import (
    heteroscedastic_sine_test_set,
    make_borehole,
    make_branin,
    make_cubic_root,
    make_currin,
    make_dette_pepelyshev,
    make_driven_pendulum,
    make_environmental,
    make_franke,
    make_friedman,
    make_friedman_corner,
    make_genz_discontinuous,
    make_genz_gaussian_peak,
    make_gramacy_lee,
    make_hartmann6,
    make_heteroscedastic_sine,
    make_ishigami,
    make_ishigami_hole,
    make_lotka_volterra,
    make_otl_circuit,
    make_pendulum_flip,
    make_piston,
    make_projectile,
    make_resonance,
    make_ringdown,
    make_robot_arm,
    make_sir_epidemic,
    make_sobol_g,
    make_standard_map,
    make_welch,
    make_wing_weight,
)

__all__ = [
    "BOREHOLE_DOMAIN",
    "BOREHOLE_NAMES",
    "ISHIGAMI_DOMAIN",
    "OTL_DOMAIN",
    "OTL_NAMES",
    "PISTON_DOMAIN",
    "PISTON_NAMES",
    "CUBIC_DOMAIN",
    "FailsWhere",
    "cubic_root",
    "GenzDiscontinuous",
    "GenzGaussianPeak",
    "HeteroscedasticSine",
    "Ishigami",
    "borehole",
    "friedman",
    "heteroscedastic_sine_test_set",
    "make_borehole",
    "make_branin",
    "make_cubic_root",
    "make_currin",
    "make_dette_pepelyshev",
    "make_driven_pendulum",
    "make_environmental",
    "make_franke",
    "make_friedman",
    "make_friedman_corner",
    "make_genz_discontinuous",
    "make_genz_gaussian_peak",
    "make_gramacy_lee",
    "make_hartmann6",
    "make_heteroscedastic_sine",
    "make_ishigami",
    "make_ishigami_hole",
    "make_lotka_volterra",
    "make_otl_circuit",
    "make_pendulum_flip",
    "make_piston",
    "make_projectile",
    "make_resonance",
    "make_ringdown",
    "make_robot_arm",
    "make_sir_epidemic",
    "make_sobol_g",
    "make_standard_map",
    "make_welch",
    "make_wing_weight",
    "otl_circuit",
    "piston",
    "sine_mean",
    "standard_normals",
]
