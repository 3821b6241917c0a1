"""Schemathesis against the live controller: every check, the operator's token, fixed seed.

The document's example spec (the quickstart, two rounds) and its links (a created experiment's
id to start, stop, rounds, model, delete) let the examples and stateful phases create and start
real experiments; fuzzing sends generated and mutated specs and parameters to every operation.
The agents' operations answer 401 to everything here (requests need Ed25519 signatures, tested
in tests/controller/api); the operator's are exercised in full.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from testbed.testing import TOKEN, Server, make_settings

HERE = Path(__file__).resolve().parent
_SEED = 20261202
_MAX_EXAMPLES = 30


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is not installed (a dev dependency: make setup)"
    return found


def test_schemathesis_all_checks_find_nothing(tmp_path: Path) -> None:
    with Server(make_settings(tmp_path)) as srv:
        run = subprocess.run(
            [
                _schemathesis(),
                "--config-file",
                str(HERE / "schemathesis.toml"),
                "run",
                f"{srv.url}/openapi.json",
                "--checks",
                "all",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--seed",
                str(_SEED),
                "--max-examples",
                str(_MAX_EXAMPLES),
                "--workers",
                "1",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        service = srv.app.state.service
        created = srv.app.state.service.db  # noqa: F841 (kept open until the counts are read)
        server_errors = service.counters["server_errors"]
        started = len(service.engines)
    summary = run.stdout[run.stdout.rfind("SUMMARY") :] if "SUMMARY" in run.stdout else run.stdout
    assert run.returncode == 0, f"schemathesis found problems:\n{run.stdout[-12000:]}"
    assert server_errors == 0, summary
    assert "generated" in summary
    assert started >= 1, f"no experiment was started by the stateful phase:\n{summary}"
