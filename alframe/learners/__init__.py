"""Committees of learners behind one protocol."""

from alframe.learners.base import Committee, predict_mean
from alframe.learners.mlp import MLPCommittee

__all__ = ["Committee", "MLPCommittee", "predict_mean"]
from alframe.learners.sklearn import BaggedCommittee, EnsembleCommittee  # noqa: E402

__all__ += ["BaggedCommittee", "EnsembleCommittee"]
from alframe.learners.cnn import CNNCommittee  # noqa: E402

__all__ += ["CNNCommittee"]
from alframe.learners.gp import GaussianProcessCommittee  # noqa: E402
from alframe.learners.auto import AutoCommittee, default_families  # noqa: E402
from alframe.learners.transformed import LogOutputs  # noqa: E402

__all__ += ["GaussianProcessCommittee", "AutoCommittee", "default_families", "LogOutputs"]
from alframe.learners.coordinates import SpaceCoordinates  # noqa: E402
from alframe.learners.output_units import OutputUnits  # noqa: E402

__all__ += ["SpaceCoordinates", "OutputUnits"]
