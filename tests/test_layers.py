"""The layers of DESIGN section 2 hold: no import runs the way a "never" forbids.

An import from a file of one layer into a file of a layer it must never reach fails, and so does
one that gets there through modules of no layer (payments/rates.py, payments/controls.py, ...),
which is how such a rule is usually broken without anyone noticing.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAYERS = {
    "Web": [
        "payments/views/",
        "payments/api/",
        "payments/admin.py",
        "payments/tasks.py",
        "payments/urls.py",
        "config/",
        "payments/management/",
        "payments/templatetags/",
        "payments/forms.py",
    ],
    "Bench": ["payments/benchmarks/"],
    "Services": ["payments/services/"],
    "Rules": [
        "payments/selectors.py",
        "payments/validation.py",
        "payments/risk.py",
        "payments/notification_selectors.py",
        "payments/representations.py",
    ],
    "Edges": ["payments/gateways/", "payments/channels/", "payments/formats/"],
    "Models": ["payments/models/"],
    "Base": ["payments/money.py", "payments/db.py", "payments/queue.py"],
    "Merchants": ["merchants/"],
}

NEVER = [
    ("Merchants", "Web"),
    ("Merchants", "Services"),
    ("Merchants", "Edges"),
    ("Edges", "Services"),
    ("Rules", "Edges"),
    ("Models", "Services"),
    ("Web", "Base"),
    ("Services", "Web"),
]


def layer_of(path: str) -> str | None:
    for layer, prefixes in LAYERS.items():
        if any(path == p or (p.endswith("/") and path.startswith(p)) for p in prefixes):
            return layer
    return None


def module_file(module: str) -> str | None:
    """The project file (relative path) of a dotted module name, None if it is not ours."""
    base = ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(ROOT).as_posix()
    return None


@cache
def imports_of(path: str) -> frozenset[str]:
    """The project files `path` imports (anywhere in it, functions included)."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    package = path.rsplit("/", 1)[0].replace("/", ".")
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            target = module_file(name)
            if target is not None and target != path:
                found.add(target)
    return frozenset(found)


def reached_layers(path: str) -> dict[str, list[str]]:
    """Layer -> the chain of files by which `path` reaches it (through files of no layer only)."""
    reached: dict[str, list[str]] = {}
    seen = {path}
    stack = [(path, [path])]
    while stack:
        current, chain = stack.pop()
        for target in sorted(imports_of(current)):
            if target in seen:
                continue
            seen.add(target)
            layer = layer_of(target)
            if layer is None:
                stack.append((target, [*chain, target]))
            else:
                reached.setdefault(layer, [*chain, target])
    return reached


def project_files() -> list[str]:
    files = []
    for top in ("payments", "merchants", "config"):
        for file in (ROOT / top).rglob("*.py"):
            rel = file.relative_to(ROOT).as_posix()
            if "/migrations/" not in rel:
                files.append(rel)
    return sorted(files)


def test_no_import_breaks_a_never_of_design_section_2():
    broken = []
    for path in project_files():
        layer = layer_of(path)
        if layer is None:
            continue
        reached = reached_layers(path)
        for source, target in NEVER:
            if layer == source and target in reached:
                broken.append(f"{source} -> {target}: {' -> '.join(reached[target])}")
    assert broken == []


def test_the_check_sees_an_import_through_a_file_of_no_layer():
    # payments/controls.py belongs to no layer and imports payments/money.py (Base): a Web file
    # importing it would reach Base, and the check must say so.
    assert layer_of("payments/controls.py") is None
    assert "payments/money.py" in imports_of("payments/controls.py")
    assert layer_of("payments/views/home.py") == "Web"
    assert "Base" in reached_layers("payments/controls.py")
