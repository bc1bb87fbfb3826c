"""Compiled JAX programs kept on disk for later processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax

from alframe.compilation_cache import default_directory, enable

REPO = Path(__file__).resolve().parents[1]
PROGRAM = """
import sys
import jax, jax.numpy as jnp
from alframe.compilation_cache import enable
print(enable(sys.argv[1]))
print(float(jax.jit(lambda x: jnp.sin(x) * 2.0)(jnp.float32(0.5))))
"""


def run_program(argument: str, env: dict[str, str]) -> list[str]:
    """The directory `enable(argument)` used and the program's answer, from a fresh process."""
    return run_process(argument, env).stdout.split()


def run_process(argument: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", PROGRAM, argument], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def without_jax_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}


def test_a_later_process_reads_back_what_the_first_compiled(tmp_path):
    directory = tmp_path / "nested" / "jax"
    env = without_jax_settings()
    first = run_program(str(directory), env)
    assert first[0] == str(directory)
    kept = sorted(p.name for p in directory.iterdir())
    assert kept  # even a program that compiled in milliseconds
    second = run_program(str(directory), env)
    assert second == first  # the same answer from the program read back
    assert sorted(p.name for p in directory.iterdir()) == kept  # nothing compiled again


def test_a_directory_that_cannot_be_made_is_warned_about_and_left_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = run_process(str(blocker / "jax"), without_jax_settings())
    assert done.stdout.split()[0] == "None"  # and the program ran, compiling as it would have
    assert f"compilation cache {blocker / 'jax'} unusable" in done.stderr


def test_a_directory_chosen_through_jax_wins():
    # conftest chose one through JAX_COMPILATION_CACHE_DIR
    assert enable(Path("/nonexistent/elsewhere")) == Path(jax.config.jax_compilation_cache_dir)


def test_the_configs_default_is_the_default_directory(monkeypatch):
    from experiments.cli import compose_config

    for cache_home in (None, "/somewhere/else"):
        if cache_home is None:
            monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        else:
            monkeypatch.setenv("XDG_CACHE_HOME", cache_home)
        assert Path(compose_config([]).compilation_cache).expanduser() == default_directory()
