"""The package's architecture holds: groups depend one way, the method stands alone."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "tcul_helpers"

#: The groups, bottom to top: a module may import its own group and the groups before it.
LAYERS = ("infra", "method", "data", "settings", "training", "measurement", "figures",
          "experiment", "teaching")


def _imports(path: Path) -> set[str]:
    """Every tcul_helpers module ``path`` imports (lazy imports included), dotted."""
    own = path.relative_to(PKG.parent).with_suffix("").parts
    package = own[:-1] if path.name != "__init__.py" else own[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("tcul_helpers"):
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tcul_helpers"))
    return {m for m in found if _exists(m)}


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PKG / rel).with_suffix(".py").exists() or (PKG / rel / "__init__.py").exists()


def _group(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_is_in_a_group():
    top = sorted(p.name for p in PKG.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert top == []
    assert sorted(p.name for p in PKG.iterdir() if p.is_dir() and p.name != "__pycache__") == \
        sorted(LAYERS)


def test_groups_depend_one_way():
    upward = []
    for path in PKG.rglob("*.py"):
        me = _group("tcul_helpers." + ".".join(path.relative_to(PKG).with_suffix("").parts))
        if me is None:
            continue
        for target in _imports(path):
            other = _group(target)
            if other is not None and LAYERS.index(other) > LAYERS.index(me):
                upward.append(f"{path.relative_to(PKG)} imports {target}")
    assert upward == []


def test_the_method_imports_only_the_error_type_and_the_input_checks():
    allowed = {"tcul_helpers.infra", "tcul_helpers.infra.errors",
               "tcul_helpers.infra.array_checks"}
    outside = []
    for path in (PKG / "method").glob("*.py"):
        for target in _imports(path):
            if not target.startswith("tcul_helpers.method") and target not in allowed:
                outside.append(f"{path.name} imports {target}")
    assert outside == []


def test_the_method_is_small():
    lines = {p.name: len(p.read_text().splitlines()) for p in (PKG / "method").glob("*.py")}
    assert sum(lines.values()) <= 1000 and max(lines.values()) <= 250, lines
