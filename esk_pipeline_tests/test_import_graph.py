"""The package's layers: every import points down or sideways, never up, and nothing circles.

From the bottom: the library (`pipeline/`), the sample-data generator, settings and their mapping
to configs, Dagster resources, assets, the run queries/jobs/sensors, the definitions, the
runner, and the API and CLI on top. Imports inside functions count too: a lazy import is still
a dependency.
"""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import esk_pipeline

ROOT = Path(esk_pipeline.__file__).parent
# Module prefix -> layer; the longest matching prefix decides.
LAYERS = {
    "esk_pipeline.pipeline": 0,
    "esk_pipeline.sample_data": 1,
    "esk_pipeline.settings": 2,
    "esk_pipeline.configs": 3,
    "esk_pipeline.resources": 4,
    "esk_pipeline.assets": 5,
    "esk_pipeline.runs": 6,
    "esk_pipeline.jobs": 6,
    "esk_pipeline.sensors": 6,
    "esk_pipeline.definitions": 7,
    "esk_pipeline.cluster_definitions": 8,
    "esk_pipeline._dagster_private": 8,
    "esk_pipeline.runner": 9,
    "esk_pipeline.api": 10,
    "esk_pipeline.cli": 10,
}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports; `from package import submodule` names the
    submodule, not the package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
                elif base in modules:
                    found.add(base)
    return found - {name}


def _layer(name: str) -> int | None:
    matches = [prefix for prefix in LAYERS if name == prefix or name.startswith(prefix + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    # The root package only points Dagster's loader at the definitions: it is no layer.
    return {
        name: _imports(name, path, modules) - {"esk_pipeline"}
        for name, path in modules.items()
        if name != "esk_pipeline"
    }


def test_every_module_has_a_layer():
    assert [name for name in _graph() if _layer(name) is None] == []


def test_no_import_points_up():
    upward = [
        f"{name} (layer {_layer(name)}) imports {target} (layer {_layer(target)})"
        for name, targets in _graph().items()
        for target in targets
        if _layer(target) > _layer(name)
    ]
    assert upward == []


def test_no_import_circle():
    graph = _graph()
    state: dict[str, str] = {}
    circles = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_no_module_is_over_the_line_limit():
    long = {
        name: lines
        for name, path in _modules().items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_dagster_wiring_reads_no_settings_at_import():
    """Definitions are built from the settings they are given: importing the assets, jobs,
    sensors and definitions must not read the process's settings."""
    code = (
        "import esk_pipeline.settings as s\n"
        "def refuse(): raise AssertionError('settings read at import')\n"
        "s.get_settings = refuse\n"
        "s.Settings.load = classmethod(lambda cls: refuse())\n"
        "import esk_pipeline.assets.ingest, esk_pipeline.assets.labeling\n"
        "import esk_pipeline.assets.trust, esk_pipeline.assets.review\n"
        "import esk_pipeline.assets.datasets, esk_pipeline.assets.augmentation\n"
        "import esk_pipeline.assets.checks\n"
        "import esk_pipeline.jobs, esk_pipeline.sensors, esk_pipeline.definitions\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_library_modules_say_what_they_export():
    """Every public module of the library lists its public names in `__all__`, and each of
    them exists; `_`-prefixed modules are the packages' own business."""
    missing, unknown = [], []
    for name in sorted(_modules()):
        parts = name.split(".")
        if _layer(name) != 0 or any(part.startswith("_") for part in parts[2:]):
            continue
        module = importlib.import_module(name)
        if not hasattr(module, "__all__"):
            missing.append(name)
        unknown += [f"{name}.{n}" for n in getattr(module, "__all__", []) if not hasattr(module, n)]
    assert (missing, unknown) == ([], [])
