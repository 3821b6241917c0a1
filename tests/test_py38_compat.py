"""protocol/ and edge_agent/ stay importable on Python 3.8 (JetPack 4 on the Jetson Nano).

vermin reports the oldest Python each file needs; ``-t=3.8-`` fails on anything newer. It reads
annotations as postponed (``from __future__ import annotations``), so the AST check below adds
what vermin cannot see: annotations that pydantic evaluates at run time (model fields) must not
use ``list[int]`` or ``X | None`` (3.9/3.10 syntax). See docs/edge-install.md.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EDGE_PACKAGES = ("protocol", "edge_agent")
_BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}
_MODEL_BASES = {"BaseModel", "BaseSettings", "RootModel", "TypedDict"}


def _vermin() -> str:
    path = Path(sys.executable).parent / "vermin"
    found = str(path) if path.exists() else shutil.which("vermin")
    if found is None:
        pytest.fail("vermin is not installed; install the dev extra")
    return found


def test_edge_packages_need_at_most_python_3_8() -> None:
    cmd = [_vermin(), "--no-tips", "--violations", "-t=3.8-", *EDGE_PACKAGES]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _newer_syntax(annotation: ast.expr) -> list[str]:
    """PEP 585/604 uses inside one annotation (``list[int]``, ``int | None``)."""
    found = []
    for node in ast.walk(annotation):
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)) or (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id in _BUILTIN_GENERICS
        ):
            found.append(ast.unparse(node))
    return found


def _model_classes(trees: dict[Path, ast.Module]) -> set[str]:
    """Names of classes deriving (within these files) from a pydantic model or TypedDict."""
    models = set(_MODEL_BASES)
    changed = True
    while changed:
        changed = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in models:
                    bases = {ast.unparse(b).split(".")[-1].split("[")[0] for b in node.bases}
                    if bases & models:
                        models.add(node.name)
                        changed = True
    return models


def test_runtime_annotations_use_typing_generics() -> None:
    files = [p for pkg in EDGE_PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))]
    trees = {p: ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in files}
    models = _model_classes(trees)
    problems = []
    for path, tree in trees.items():
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            if cls.name not in models:
                continue
            for stmt in cls.body:
                if isinstance(stmt, ast.AnnAssign):
                    for bad in _newer_syntax(stmt.annotation):
                        rel = path.relative_to(REPO)
                        problems.append(f"{rel}:{stmt.lineno} {cls.name}: `{bad}`")
    assert not problems, "use typing.List/Dict/Optional/Union in model fields:\n" + "\n".join(
        problems
    )
