"""README's layout section names every package and module of the tree, and nothing that is gone."""

import re
from pathlib import Path

import esk_pipeline

ROOT = Path(esk_pipeline.__file__).parent
README = ROOT.parent / "README.md"


def _layout_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Layout") :]
    return section[section.index("```") + 3 : section.index("```", section.index("```") + 3)]


def _names_in(block: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", block))


def _tree_names() -> set[str]:
    """Each package folder and module of esk_pipeline/ and esk_pipeline/pipeline/, one level
    down, by name (without .py); private modules and __init__ are the package's business."""
    names = set()
    for folder in (ROOT, ROOT / "pipeline"):
        for path in folder.iterdir():
            if path.name.startswith(("_", ".")):
                continue
            if path.is_dir() and (path / "__init__.py").exists():
                names.add(path.name)
                names |= {
                    child.stem
                    for child in path.glob("*.py")
                    if not child.name.startswith("_") and folder == ROOT / "pipeline"
                }
            elif path.suffix == ".py":
                names.add(path.stem)
    return names


def test_the_layout_names_every_package_and_module():
    missing = sorted(_tree_names() - _names_in(_layout_block()))
    assert missing == []


def test_the_layout_names_no_module_that_is_gone():
    block = _layout_block()
    named = set(re.findall(r"([a-z_][a-z0-9_]*)\.py", block))
    present = {path.stem for path in ROOT.rglob("*.py")}
    assert sorted(named - present) == []


_CONFLICT_MARKER = re.compile(r"^(?:<{7}|={7}|>{7})(?: |$)", re.MULTILINE)


def test_no_file_holds_a_merge_conflict_marker():
    """A merge resolved by hand leaves no `<<<<<<<`/`=======`/`>>>>>>>` line behind."""
    repo = ROOT.parent
    files = [README, repo / "pyproject.toml"]
    for folder in ("esk_pipeline", "esk_pipeline_tests", "bench", "deploy"):
        files += [
            p for p in (repo / folder).rglob("*") if p.suffix in (".py", ".md", ".yaml", ".sh")
        ]
    marked = [
        str(path.relative_to(repo))
        for path in files
        if _CONFLICT_MARKER.search(path.read_text(encoding="utf-8"))
    ]
    assert marked == []
