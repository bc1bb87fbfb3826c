"""RAMSES oracles: a pool over finished runs (parameters from namelists or a table) and a
command oracle that launches a stand-in simulator writing through the RAMSES writer.
Failed runs become failed rows with their reason."""

from __future__ import annotations

import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alframe.oracle import Oracle
from alframe.space import Box
from simulators.ramses import (
    ColumnDensityImage,
    FieldGrid,
    NamelistError,
    RamsesCommandOracle,
    TrainingImages,
    parameter_value,
    pool_oracle_from_namelists,
    pool_oracle_from_table,
    read_namelist,
    set_values,
    training_images,
    uniform_cells,
    write_uniform,
)

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ramses"

TEMPLATE = """\
Parameter file of the stand-in blob simulator.

&AMR_PARAMS
levelmin=4      ! uniform grid of 2^levelmin cells per side
boxlen=2.0
/

&BLOB_PARAMS
amplitude=1.0   ! density excess at the centre
width=0.3
seed=0
sleep=0
/
"""

# A stand-in for a simulator: reads its namelist, fails the way simulators fail, and writes a
# RAMSES output through the package's writer.
STANDIN = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    import numpy as np
    from simulators.ramses import read_namelist, write_uniform

    nml_path = Path(sys.argv[1])
    nml = read_namelist(nml_path.read_text())
    blob, amr = nml["blob_params"], nml["amr_params"]
    time.sleep(blob["sleep"])
    if blob["amplitude"] < 0:
        print("negative amplitude: nothing to simulate", file=sys.stderr)
        sys.exit(3)
    if blob["amplitude"] < 0.1:
        sys.exit(0)  # finishes without writing an output
    n, boxlen = 2 ** amr["levelmin"], amr["boxlen"]
    x = (np.arange(n) + 0.5) * boxlen / n
    r2 = sum(c**2 for c in np.meshgrid(x - 0.4 * boxlen, x - 0.56 * boxlen, x - 0.47 * boxlen,
                                       indexing="ij"))
    noise = np.random.default_rng(blob["seed"]).uniform(0, 0.01, (n, n, n))
    rho = 1.0 + blob["amplitude"] * np.exp(-r2 / blob["width"] ** 2) + noise
    write_uniform(Path("output_00001"), {"density": rho, "velocity_x": np.zeros_like(rho)},
                  boxlen=boxlen, time=0.1, namelist=nml_path.read_text())
""")


def blob_density(amplitude: float, width: float, seed: int, level: int = 4,
                 boxlen: float = 2.0) -> np.ndarray:
    """The stand-in's density field, computed here independently of any RAMSES file."""
    n = 2**level
    x = (np.arange(n) + 0.5) * boxlen / n
    r2 = sum(c**2 for c in np.meshgrid(x - 0.4 * boxlen, x - 0.56 * boxlen, x - 0.47 * boxlen,
                                       indexing="ij"))
    noise = np.random.default_rng(seed).uniform(0, 0.01, (n, n, n))
    return 1.0 + amplitude * np.exp(-r2 / width**2) + noise


# ------------------------------------------------------------------------------ namelists


def test_namelist_read_and_set_keep_comments():
    text = set_values(TEMPLATE, {"BLOB_PARAMS/amplitude": 2.5, "blob_params/seed": 7,
                                 "AMR_PARAMS/levelmax": 6, "OUTPUT_PARAMS/tout(2)": 0.5})
    parsed = read_namelist(text)
    assert parsed["blob_params"] == {"amplitude": 2.5, "width": 0.3, "seed": 7, "sleep": 0}
    assert parsed["amr_params"]["levelmax"] == 6
    assert parsed["output_params"]["tout"] == [None, 0.5]
    assert "amplitude=2.5   ! density excess at the centre" in text
    assert parameter_value(parsed, "OUTPUT_PARAMS/tout(2)") == 0.5
    with pytest.raises(NamelistError, match="no 'mach' in &BLOB_PARAMS"):
        parameter_value(parsed, "BLOB_PARAMS/mach")
    with pytest.raises(NamelistError, match="not of the form"):
        parameter_value(parsed, "amplitude")


def test_namelist_of_a_real_run():
    path = DATA / "amr2d" / "sedov2d_amr.nml"
    if not path.is_file():
        pytest.skip(f"RAMSES fixture not found: {path}")
    parsed = read_namelist(path.read_text())
    assert parameter_value(parsed, "INIT_PARAMS/x_center(2)") == 0.40
    assert parameter_value(parsed, "BOUNDARY_PARAMS/ibound_min(2)") == 1
    assert parsed["init_params"]["region_type"] == ["square", "point"]
    assert parsed["run_params"]["hydro"] is True
    with pytest.raises(NamelistError, match="is a list of 2"):
        parameter_value(parsed, "INIT_PARAMS/x_center")


# ------------------------------------------------------------------------------ pool oracle


def make_runs(root: Path, rows) -> None:
    """One directory per (name, amplitude, width, seed, has_output)."""
    for name, amplitude, width, seed, has_output in rows:
        run = root / name
        run.mkdir(parents=True)
        text = set_values(TEMPLATE, {"BLOB_PARAMS/amplitude": amplitude,
                                     "BLOB_PARAMS/width": width, "BLOB_PARAMS/seed": seed})
        (run / "blob.nml").write_text(text)
        if has_output:
            write_uniform(run / "output_00001", {"density": blob_density(amplitude, width, seed)},
                          boxlen=2.0)


def test_pool_oracle_from_namelists(tmp_path):
    make_runs(tmp_path, [("a", 1.0, 0.3, 1, True), ("b", 2.0, 0.2, 2, True),
                         ("crashed", 3.0, 0.2, 3, False)])
    oracle = pool_oracle_from_namelists(
        tmp_path, {"amplitude": "BLOB_PARAMS/amplitude", "width": "BLOB_PARAMS/width"},
        ColumnDensityImage(level=4, axis="y"))
    assert isinstance(oracle, Oracle)
    assert oracle.space.ids == ("a", "b", "crashed")
    assert len(oracle.outputs.names) == 256 and oracle.outputs.names[17] == \
        "log_column_density_y[1,1]"
    queries = np.array([[2.0, 0.2], [1.0, 0.3], [3.0, 0.2], [9.0, 9.0]])
    outcome = oracle.run(queries)
    assert outcome.ok.tolist() == [True, True, False, False]
    for row, (amplitude, width, seed) in ((0, (2.0, 0.2, 2)), (1, (1.0, 0.3, 1))):
        expected = np.log10(blob_density(amplitude, width, seed).sum(axis=1) * 2.0 / 16)
        np.testing.assert_allclose(outcome.y[row].reshape(16, 16), expected, rtol=1e-12)
    assert "no output_NNNNN directory" in outcome.error[2]
    assert "no simulation in the pool has {'amplitude': 9.0, 'width': 9.0}" in outcome.error[3]
    assert np.isnan(outcome.y[2:]).all()


def test_pool_oracle_from_table(tmp_path):
    make_runs(tmp_path / "runs", [("a", 1.0, 0.3, 1, True), ("b", 2.0, 0.2, 2, True)])
    pd.DataFrame({"run": ["runs/a", "runs/b", "runs/none"], "amplitude": [1.0, 2.0, 4.0],
                  "seed": [1, 2, 4]}).to_csv(tmp_path / "runs.csv", index=False)
    oracle = pool_oracle_from_table(tmp_path / "runs.csv", FieldGrid(level=3))
    assert oracle.space.names == ("amplitude", "seed")
    outcome = oracle.run(oracle.space.values)
    assert outcome.ok.tolist() == [True, True, False]
    coarse = blob_density(2.0, 0.2, 2).reshape(8, 2, 8, 2, 8, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(outcome.y[1].reshape(8, 8, 8), coarse, rtol=1e-12)
    assert "runs/none: no output_NNNNN directory" in outcome.error[2]


def test_pool_oracle_over_the_real_runs():
    if not (DATA / "amr3d" / "output_00002").is_dir():
        pytest.skip(f"RAMSES fixtures not found: {DATA}")
    oracle = pool_oracle_from_namelists(
        DATA, {"boxlen": "AMR_PARAMS/boxlen", "levelmax": "AMR_PARAMS/levelmax"},
        ColumnDensityImage(level=6, log=False))
    assert oracle.space.ids == ("amr2d", "amr3d", "turb16")
    outcome = oracle.run(oracle.space.values)
    assert outcome.ok.tolist() == [False, True, True]
    assert "ColumnDensityImage expects a 3-D output, got 2-D" in outcome.error[0]
    with np.load(DATA / "amr3d" / "reference.npz") as ref:
        np.testing.assert_allclose(outcome.y[1].reshape(64, 64), ref["column_density_z"],
                                   rtol=1e-12)
    with np.load(DATA / "turb16" / "reference.npz") as ref:
        upsampled = np.repeat(np.repeat(ref["column_density_z"], 4, axis=0), 4, axis=1)
        np.testing.assert_allclose(outcome.y[2].reshape(64, 64), upsampled, rtol=1e-12)


def test_duplicate_parameters_are_refused(tmp_path):
    make_runs(tmp_path, [("a", 1.0, 0.3, 1, True), ("b", 1.0, 0.3, 2, True)])
    with pytest.raises(ValueError, match="same parameters"):
        pool_oracle_from_namelists(tmp_path, {"amplitude": "BLOB_PARAMS/amplitude"},
                                   FieldGrid(level=2))


# ------------------------------------------------------------------------------ command oracle


@pytest.fixture
def command_oracle(tmp_path):
    script = tmp_path / "standin.py"
    script.write_text(STANDIN)

    def make(**overrides):
        settings = dict(
            command=(sys.executable, str(script), "{namelist}"),
            template=TEMPLATE,
            space=Box(names=("amplitude", "width", "seed"), lower=(-1.0, 0.1, 0.0),
                      upper=(3.0, 0.5, 100.0)),
            parameters={"amplitude": "BLOB_PARAMS/amplitude", "width": "BLOB_PARAMS/width",
                        "seed": "BLOB_PARAMS/seed"},
            integer_inputs=("seed",),
            product=ColumnDensityImage(level=4, axis="z"),
            workdir=tmp_path / "runs",
        )
        settings.update(overrides)
        return RamsesCommandOracle(**settings)

    return make


def test_command_oracle_runs_and_reads(command_oracle, tmp_path):
    oracle = command_oracle()
    assert isinstance(oracle, Oracle)
    queries = np.array([[1.5, 0.25, 3.2], [-0.5, 0.3, 1.0], [0.05, 0.3, 1.0]])
    outcome = oracle.run(queries)
    assert outcome.ok.tolist() == [True, False, False]
    expected = np.log10(blob_density(1.5, 0.25, 3).sum(axis=2) * 2.0 / 16)
    np.testing.assert_allclose(outcome.y[0].reshape(16, 16), expected, rtol=1e-12)
    assert outcome.error[1].startswith("exit status 3: negative amplitude: nothing to simulate")
    assert "no output_NNNNN directory (the run wrote nothing)" in outcome.error[2]
    assert np.all(outcome.cost_s > 0)
    # The run directory keeps the namelist it ran with (seed rounded to an integer) and the
    # simulator's own copy inside its output.
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 3
    written = [read_namelist((r / "run.nml").read_text())["blob_params"] for r in runs]
    assert {"amplitude": 1.5, "width": 0.25, "seed": 3, "sleep": 0} in written


def test_command_oracle_failures_never_raise(command_oracle):
    slow = command_oracle(template=set_values(TEMPLATE, {"BLOB_PARAMS/sleep": 30}), timeout_s=1)
    outcome = slow.run(np.array([[1.0, 0.3, 1.0]]))
    assert not outcome.ok[0] and outcome.error[0].startswith("timed out after 1 s")
    missing = command_oracle(command=("no-such-simulator-binary", "{namelist}"))
    outcome = missing.run(np.array([[1.0, 0.3, 1.0]]))
    assert outcome.error[0].startswith("command not found: no-such-simulator-binary")


def test_command_oracle_with_executor(command_oracle):
    queries = np.array([[1.0, 0.3, 1.0], [2.0, 0.2, 5.0]])
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcome = command_oracle(product=TrainingImages(level=4), executor=pool).run(queries)
    assert outcome.ok.all() and outcome.y.shape == (2, 3 * 4 * 4 * 8 * 8)
    for row, (amplitude, width, seed) in enumerate(queries):
        cells = uniform_cells({"density": blob_density(amplitude, width, int(seed))}, boxlen=2.0)
        np.testing.assert_allclose(outcome.y[row], training_images(cells).reshape(-1),
                                   rtol=1e-12)


def test_command_oracle_checks_its_configuration(command_oracle):
    with pytest.raises(ValueError, match=r"inputs \['seed'\] have no namelist parameter"):
        command_oracle(parameters={"amplitude": "BLOB_PARAMS/amplitude",
                                   "width": "BLOB_PARAMS/width"})
    with pytest.raises(NamelistError, match="not of the form"):
        command_oracle(parameters={"amplitude": "amplitude", "width": "BLOB_PARAMS/width",
                                   "seed": "BLOB_PARAMS/seed"})
    with pytest.raises(ValueError, match="integer_inputs"):
        command_oracle(integer_inputs=("mach",))
