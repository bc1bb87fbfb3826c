"""Physical set-up of the molecular-cloud box and its code units.

The solver works in code units where the box side, the mean density and the isothermal sound
speed are all 1:

    length   L      = box side              (10 pc   = 3.0857e19 cm)
    density  rho_0  = mean density          (6.77e-22 g/cm^3)
    velocity c_s    = isothermal sound speed (0.187 km/s at 10 K, mu = 2.37)
    time     L/c_s  = sound-crossing time   (52.4 Myr)
    mass     rho_0 L^3                      (1.0e4 solar masses)

so a velocity in code units is a Mach number and 0.5 Myr is 0.00955 code time units.

The sound speed is c_s = sqrt(k_B T / (mu m_H)) with mu = 2.37, the mean mass per free particle
of molecular gas (H2 with helium, in units of the hydrogen-atom mass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulators.turbulence.errors import positive_number

PARSEC_CM = 3.0856775814913673e18
SOLAR_MASS_G = 1.988409870698051e33
BOLTZMANN_ERG_PER_K = 1.380649e-16
HYDROGEN_MASS_G = 1.6735575e-24
MYR_S = 1e6 * 365.25 * 86400.0
KM_CM = 1e5


def sound_speed_cm_s(temperature_k: float, mean_molecular_weight: float) -> float:
    """Isothermal sound speed sqrt(k_B T / (mu m_H)) in cm/s."""
    return math.sqrt(BOLTZMANN_ERG_PER_K * temperature_k
                     / (mean_molecular_weight * HYDROGEN_MASS_G))


@dataclass(frozen=True)
class CodeUnits:
    """Code units in cgs: box side, mean density and sound speed are 1 in code units.

    Args:
        length_cm: the code length unit (the box side), cm.
        density_g_cm3: the code density unit (the mean density), g/cm^3.
        velocity_cm_s: the code velocity unit (the sound speed), cm/s.
    """

    length_cm: float
    density_g_cm3: float
    velocity_cm_s: float

    @property
    def time_s(self) -> float:
        """Code time unit (the sound-crossing time of the box), s."""
        return self.length_cm / self.velocity_cm_s

    @property
    def mass_g(self) -> float:
        """Code mass unit (the mass of the box), g."""
        return self.density_g_cm3 * self.length_cm**3

    @property
    def column_density_g_cm2(self) -> float:
        """Code column-density unit (the mean column density through the box), g/cm^2."""
        return self.density_g_cm3 * self.length_cm

    def time_to_code(self, myr: float) -> float:
        """A duration in Myr, in code time units."""
        return myr * MYR_S / self.time_s

    def time_to_myr(self, code_time: float) -> float:
        """A duration in code time units, in Myr."""
        return code_time * self.time_s / MYR_S


@dataclass(frozen=True)
class CloudSetup:
    """The talk's turbulent box in physical units.

    Args:
        box_pc: side of the periodic cube, pc.
        density_g_cm3: initial (uniform) density, g/cm^3.
        temperature_k: gas temperature, K (isothermal).
        mean_molecular_weight: mean particle mass in hydrogen-atom masses.
        mach: rms 3-D Mach number of the initial velocity field.
        duration_myr: how long the box evolves, Myr.
    """

    box_pc: float = 10.0
    density_g_cm3: float = 6.77e-22
    temperature_k: float = 10.0
    mean_molecular_weight: float = 2.37
    mach: float = 1.41
    duration_myr: float = 0.5

    def __post_init__(self) -> None:
        for name in ("box_pc", "density_g_cm3", "temperature_k", "mean_molecular_weight",
                     "mach", "duration_myr"):
            object.__setattr__(self, name, positive_number(f"CloudSetup.{name}", getattr(self, name)))

    @property
    def sound_speed_cm_s(self) -> float:
        return sound_speed_cm_s(self.temperature_k, self.mean_molecular_weight)

    @property
    def units(self) -> CodeUnits:
        return CodeUnits(length_cm=self.box_pc * PARSEC_CM, density_g_cm3=self.density_g_cm3,
                         velocity_cm_s=self.sound_speed_cm_s)

    @property
    def mass_msun(self) -> float:
        """Mass of the box, solar masses."""
        return self.units.mass_g / SOLAR_MASS_G

    @property
    def duration_code(self) -> float:
        """`duration_myr` in code time units."""
        return self.units.time_to_code(self.duration_myr)

    def describe(self) -> dict[str, float]:
        """The set-up's derived quantities, for logs and run metadata."""
        units = self.units
        return {
            "box_pc": self.box_pc,
            "mass_msun": self.mass_msun,
            "sound_speed_km_s": self.sound_speed_cm_s / KM_CM,
            "rms_velocity_km_s": self.mach * self.sound_speed_cm_s / KM_CM,
            "crossing_time_myr": units.time_to_myr(1.0),
            "duration_code": self.duration_code,
            "unit_l_cm": units.length_cm,
            "unit_d_g_cm3": units.density_g_cm3,
            "unit_t_s": units.time_s,
        }
