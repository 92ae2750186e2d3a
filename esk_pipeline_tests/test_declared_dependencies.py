"""Every third-party module the package imports comes from a distribution pyproject.toml
declares (in `dependencies` or an extra): one that arrives only as another package's
dependency can go away, or change, with that package."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import esk_pipeline

ROOT = Path(esk_pipeline.__file__).parent
PYPROJECT = ROOT.parent / "pyproject.toml"


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_modules() -> dict[str, set[str]]:
    """Top-level module -> the files importing it (imports inside functions too)."""
    found: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_distribution_is_declared():
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    requirements = [
        *project["dependencies"],
        *(r for extra in project.get("optional-dependencies", {}).values() for r in extra),
    ]
    declared = {_normalised(re.match(r"[A-Za-z0-9_.-]+", r)[0]) for r in requirements}
    distributions = packages_distributions()
    undeclared = {
        module: sorted(files)
        for module, files in _imported_modules().items()
        if module not in sys.stdlib_module_names
        and module != "esk_pipeline"
        and not {_normalised(d) for d in distributions.get(module, [module])} & declared
    }
    assert undeclared == {}
