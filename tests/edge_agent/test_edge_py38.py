"""The learning and device layer of the edge agent stays importable on Python 3.8."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
_VERMIN = shutil.which("vermin", path=str(Path(sys.executable).parent))
_FILES = [
    "edge_agent/data",
    "edge_agent/dvfs",
    "edge_agent/energy.py",
    "edge_agent/models.py",
    "edge_agent/training.py",
]


@pytest.mark.skipif(_VERMIN is None, reason="vermin not installed in this environment")
def test_learning_and_device_layer_stay_python_38_compatible() -> None:
    out = subprocess.run(
        [str(_VERMIN), "-t=3.8-", "--no-tips", "--violations", "--eval-annotations", *_FILES],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_importing_them_pulls_in_no_server_or_radio_stack() -> None:
    code = (
        "import sys, edge_agent.data, edge_agent.dvfs, edge_agent.energy, "
        "edge_agent.models, edge_agent.training; "
        "bad = [m for m in ('cvxpy', 'fastapi', 'gnuradio', 'controller') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=_ROOT, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
