"""Every module says which of its names are public, and no module reaches into another's private names.

PEP 8, "Public and internal interfaces": "modules should explicitly declare the names in their
public API using the __all__ attribute", and "internal interfaces (packages, modules, classes,
functions, attributes or other names) should still be prefixed with a single leading underscore".
So here, for every module of the package:

- ``__all__`` is a literal list of names;
- in a module, it lists exactly the public names the module defines (functions, classes and
  module-level constants whose names do not start with ``_``), not the names it imports; a logger
  (``logging.getLogger``) and a type variable (``TypeVar``) are plumbing, not API;
- in a package's ``__init__``, it lists every public name the package defines, and every name it
  lists (its re-exported API) is there;
- no module imports a name starting with ``_`` from another module of the package.

The module list is read from the installed package's own folder, so a module added later is
checked without editing this file.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import fhir_injection

PACKAGE = Path(fhir_injection.__file__).parent


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "vendor" not in p.parts)


def _dotted(path: Path) -> str:
    parts = ("fhir_injection", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _plumbing(value: ast.expr | None) -> bool:
    """A logger or a type variable: bound at module level, but not part of what a module offers."""
    if isinstance(value, ast.Call):
        called = ast.unparse(value.func)
        return called.endswith(("getLogger", "TypeVar"))
    return False


def defined_public_names(tree: ast.Module) -> set[str]:
    """The names a module defines at its top level (inside ``if``/``try`` too, but not under
    ``if TYPE_CHECKING``) that do not start with ``_``; imports are not definitions."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign) and not _plumbing(node.value):
                for target in node.targets:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if not _plumbing(node.value):
                    names.add(node.target.id)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                visit(node.orelse)
                visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)

    visit(tree.body)
    return {name for name in names if not name.startswith("_")}


def declared_all(tree: ast.Module) -> list[str] | None:
    """The literal ``__all__`` of a module, or None when it has none."""
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == "__all__":
            value = ast.literal_eval(node.value)  # a literal list of strings, or this raises
            assert isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
            return list(value)
    return None


def private_imports(tree: ast.Module) -> list[str]:
    """``from <our module> import _name`` (a leading underscore, not a dunder) anywhere in it."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        ours = node.level > 0 or (node.module or "").split(".")[0] == "fhir_injection"
        for alias in node.names if ours else ():
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                found.append(f"from {'.' * node.level}{node.module or ''} import {alias.name}")
    return found


def test_the_checks_find_what_they_look_for():
    source = """
import logging
from typing import TYPE_CHECKING, TypeVar
from .other import helper, _hidden
if TYPE_CHECKING:
    from .types import Only
log = logging.getLogger(__name__)
T = TypeVar("T")
LIMIT = 3
_private = 4
def run(): ...
class Thing: ...
try:
    FAST = True
except ImportError:
    FAST = False
__all__ = ["run", "Thing"]
"""
    tree = ast.parse(source)
    assert defined_public_names(tree) == {"LIMIT", "run", "Thing", "FAST"}
    assert declared_all(tree) == ["run", "Thing"]
    assert private_imports(tree) == ["from .other import _hidden"]
    assert declared_all(ast.parse("x = 1")) is None


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_all_lists_the_module_public_names(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    listed = declared_all(tree)
    assert listed is not None, f"{_dotted(path)} has no __all__"
    assert len(listed) == len(set(listed)), f"{_dotted(path)}: __all__ names a name twice"
    public = defined_public_names(tree)
    named = {name for name in listed if not (name.startswith("__") and name.endswith("__"))}
    if path.name == "__init__.py":
        assert public <= named, f"{_dotted(path)}: not in __all__: {sorted(public - named)}"
    else:
        assert named == public, (
            f"{_dotted(path)}: __all__ lacks {sorted(public - named)}, "
            f"names what it does not define {sorted(named - public)}"
        )


@pytest.mark.parametrize(
    "path",
    [p for p in _modules() if p.name != "__main__.py"],  # importing one runs the command
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_every_listed_name_is_there(path: Path):
    module = importlib.import_module(_dotted(path))
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{module.__name__}.__all__ names what it does not have: {missing}"


def test_no_module_imports_another_modules_private_names():
    found = {
        _dotted(path): imports
        for path in _modules()
        if (imports := private_imports(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert found == {}
