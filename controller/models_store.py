"""Global models on disk: one safetensors file per experiment and version.

A new model is first written as a candidate (agents evaluate it before the round commits) and
becomes the committed version only in :meth:`ModelStore.commit_candidate`, which the round engine
calls just before it commits the round row; a crash in between leaves the previous version as
the latest, and the round is redone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from protocol import tensorfile

__all__ = ["ModelStore"]


class ModelStore:
    """Files under ``root/<experiment>/v<version>.safetensors`` (+ ``candidate-v<n>``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, experiment_id: str) -> Path:
        return self.root / experiment_id

    @staticmethod
    def digest(blob: bytes) -> str:
        return hashlib.sha256(blob).hexdigest()

    def _write(self, path: Path, tensors: dict[str, np.ndarray], order: list[str]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(tensorfile.encode(tensors, order))
        os.replace(tmp, path)
        return path

    def save(
        self, experiment_id: str, version: int, tensors: dict[str, np.ndarray], order: list[str]
    ) -> Path:
        return self._write(self._dir(experiment_id) / f"v{version}.safetensors", tensors, order)

    def stage_candidate(
        self, experiment_id: str, version: int, tensors: dict[str, np.ndarray], order: list[str]
    ) -> Path:
        return self._write(
            self._dir(experiment_id) / f"candidate-v{version}.safetensors", tensors, order
        )

    def candidate_path(self, experiment_id: str, version: int) -> Path:
        return self._dir(experiment_id) / f"candidate-v{version}.safetensors"

    def commit_candidate(self, experiment_id: str, version: int) -> Path:
        final = self._dir(experiment_id) / f"v{version}.safetensors"
        os.replace(self.candidate_path(experiment_id, version), final)
        return final

    def path(self, experiment_id: str, version: int) -> Path:
        return self._dir(experiment_id) / f"v{version}.safetensors"

    def load(
        self, experiment_id: str, version: int, candidate: bool = False
    ) -> tuple[dict[str, np.ndarray], list[str]]:
        """A committed version's tensors and their order (or the staged candidate's)."""
        path = (self.candidate_path if candidate else self.path)(experiment_id, version)
        tensors, order, _ = tensorfile.decode(path.read_bytes())
        return tensors, order

    def delete(self, experiment_id: str) -> None:
        shutil.rmtree(self._dir(experiment_id), ignore_errors=True)
