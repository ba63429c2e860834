"""The direction of imports (docs/architecture.md): apps import only the apps before them, the
small shared modules and the settings import no app, and no two modules import each other, even
through an import inside a function (which hides a circle from Python, not from the reader).
"""

import ast
from pathlib import Path

import merumaga

PACKAGE = Path(merumaga.__file__).parent
APPS = [
    "institute",
    "subscribers",
    "publishing",
    "mailings",
    "delivery",
    "bounces",
    "outcomes",
    "team",
    "hooks",
    "api",
    "operations",
]
SHARED = [
    "audit",
    "charset",
    "env",
    "mailview",
    "middleware",
    "mime",
    "outgoing",
    "providers",
    "reasons",
    "relays",
    "shown",
    "terminal",
    "uploads",
]


def modules() -> dict[str, Path]:
    """Every module of the package but tests and migrations, by dotted name."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "tests" in parts or "migrations" in parts or parts[-1] == "conftest":
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module a `from … import` names, relative imports resolved against `importer`."""
    if not node.level:
        return node.module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    base = ".".join(package[: len(package) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def imports_of(path: Path, known: dict[str, Path], importer: str = "") -> set[str]:
    """The package's modules `path` imports, anywhere in it (a function's body too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = absolute(node, importer, path.name == "__init__.py")
            names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, known, name) - {name} for name, path in known.items()}


def app_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in APPS else None


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(edges.get(module, ())):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_no_two_modules_import_each_other():
    assert circles(graph()) == []


def test_an_app_imports_only_the_apps_before_it():
    upward = [
        f"{module} -> {imported}"
        for module, imported_modules in graph().items()
        for imported in imported_modules
        if app_of(module)
        and app_of(imported)
        and APPS.index(app_of(imported)) > APPS.index(app_of(module))
    ]
    assert upward == []


def test_the_settings_and_the_shared_modules_import_no_app():
    edges = graph()
    for module in ["merumaga.settings", *(f"merumaga.{name}" for name in SHARED)]:
        assert module in edges, f"{module} is gone: update SHARED"
        assert {imported for imported in edges[module] if app_of(imported)} == set(), module


def private_uses(path: Path, known: dict[str, Path]) -> list[str]:
    """Names with a leading underscore that `path` takes from another module of the package:
    `from merumaga.x import _name`, or `module._name` on a module it imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_aliases = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in known:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in known:
                    module_aliases.add(alias.asname or alias.name)
                elif alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known and alias.asname:
                    module_aliases.add(alias.asname)
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            continue
        owner = dotted(node.value)
        if owner in module_aliases or owner in known:  # `mime._x`, `merumaga.mailings.mime._x`
            found.append(f"{owner}.{node.attr}")
    return found


def dotted(node: ast.expr) -> str:
    """`a.b.c` of an expression made of names and attributes only, else ""."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def test_no_module_uses_another_modules_private_names():
    known = modules()
    uses = {name: private_uses(path, known) for name, path in known.items()}
    assert {name: found for name, found in uses.items() if found} == {}


def test_the_checks_see_a_circle_an_upward_import_and_an_import_inside_a_function(tmp_path):
    """The helpers above, on modules written for the purpose: each rule can fail."""
    (tmp_path / "a.py").write_text("def f():\n    from merumaga.mailings import b\n")
    known = {"merumaga.mailings.a": tmp_path / "a.py", "merumaga.mailings.b": Path()}
    assert imports_of(tmp_path / "a.py", known) == {"merumaga.mailings.b"}
    assert circles({"x": {"y"}, "y": {"z"}, "z": {"x"}, "w": {"x"}}) == [["x", "y", "z"]]
    assert app_of("merumaga.delivery.catcher") == "delivery" and app_of("merumaga.relays") is None
    (tmp_path / "c.py").write_text(
        "from merumaga.mailings import mime\nfrom merumaga.charset import _ESC\nmime._POLICY\n"
    )
    known = {
        "merumaga.mailings": Path(),
        "merumaga.mailings.mime": Path(),
        "merumaga.charset": Path(),
    }
    assert private_uses(tmp_path / "c.py", known) == ["merumaga.charset._ESC", "mime._POLICY"]
    (tmp_path / "d.py").write_text("import merumaga.mailings.mime\nmerumaga.mailings.mime._x\n")
    assert private_uses(tmp_path / "d.py", known) == ["merumaga.mailings.mime._x"]
    (tmp_path / "e.py").write_text("from . import mime\nfrom ..delivery import queue\n")
    known = {
        "merumaga.mailings.mime": Path(),
        "merumaga.delivery.queue": Path(),
        "merumaga.bounces": Path(),
    }
    assert imports_of(tmp_path / "e.py", known, "merumaga.mailings.rendering") == {
        "merumaga.mailings.mime",
        "merumaga.delivery.queue",
    }
    assert app_of("merumaga.bounces") == "bounces"
