"""The layers point one way: cli/ → flows/ → tasks/ → the library. Nothing in the library (or tasks,
models, the LTI client, the sandbox) imports flows/ or cli/ — not even inside a function."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BELOW_THE_FLOWS = ("gradesync", "tasks", "models", "lti_client", "sandbox_lms")
ABOVE = ("flows", "cli")


def _is_above(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in ABOVE


def upward_imports(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, module) of every import of flows/ or cli/ anywhere in `source`: module level, inside
    functions, and importlib.import_module("…") / __import__("…") with a literal name."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _is_above(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_above(node.module):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("import_module", "__import__") and _is_above(str(node.args[0].value)):
                found.append((node.lineno, str(node.args[0].value)))
    return found


def test_the_checker_sees_function_level_and_dynamic_imports():
    source = ("import os\n"
              "def run():\n"
              "    from flows.audit import course_audit\n"
              "    import flows.resync\n"
              "    importlib.import_module('cli.main')\n"
              "    from flowsy import x\n")
    assert upward_imports(source) == [(3, "flows.audit"), (4, "flows.resync"), (5, "cli.main")]


def test_nothing_below_the_flows_imports_flows_or_the_cli():
    files = [p for pkg in BELOW_THE_FLOWS for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 50, "the packages were not found"
    offenders = [f"{p.relative_to(ROOT)}:{line}: imports {mod}"
                 for p in files for line, mod in upward_imports(p.read_text(encoding="utf-8"), str(p))]
    assert offenders == []
