"""The package's layers (ARCHITECTURE.md, CONTRIBUTING.md): each package imports only from those below it, no module
imports another that imports it back (imports inside functions counted), and no recipe imports a page writer."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

import dreamscope

SOURCE = Path(dreamscope.__file__).resolve().parent
# Bottom to top: a module may import from its own package or from those lower down, never from a higher one.
LAYERS = {"base": 0, "io": 1, "models": 2, "optvis": 3, "recipes": 4, "pages": 5, "work": 6, "studio": 7, "cli": 8, "facade": 9}
LARGEST = 700  # lines: no module comes near the 1,066 of the command line before it was split


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__",):
        return "facade"
    return parts[1] if parts[1] in LAYERS else "base"


def is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (SOURCE / relative).with_suffix(".py").is_file() or (SOURCE / relative / "__init__.py").is_file()


def imports() -> dict[str, set[str]]:
    """Every dreamscope module and the dreamscope modules it imports, anywhere in it (inside functions too)."""
    found = {}
    for path in SOURCE.rglob("*.py"):
        module = module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names if alias.name.split(".")[0] == "dreamscope"}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "dreamscope":
                    continue
                for alias in node.names:  # `from . import x` names a module when x is one
                    edges.add(f"{target}.{alias.name}" if is_module(f"{target}.{alias.name}") else target)
        found[module] = {edge for edge in edges if edge != module}
    return found


GRAPH = imports()


def test_the_graph_sees_every_module():
    assert len(GRAPH) > 60 and "dreamscope.work.jobs" in GRAPH and "dreamscope.recipes.dream" in GRAPH
    assert "dreamscope.optvis.render" in GRAPH["dreamscope.recipes.dream"]  # `from ..optvis import render`
    assert "dreamscope.work.batch" in GRAPH["dreamscope.work.atlas"]  # `from . import batch`


def test_each_package_imports_only_from_those_below_it():
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if layer(module) != layer(target) and LAYERS[layer(target)] >= LAYERS[layer(module)]
    )
    assert not upward, "\n".join(upward)


def test_no_module_imports_one_that_imports_it_back():
    circles, state, stack = [], {}, []

    def visit(module):  # depth-first; a grey node met again closes a circle
        state[module] = "grey"
        stack.append(module)
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == "grey":
                circles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "black"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not circles, "\n".join(circles)


def test_the_checks_can_fail():
    """The two checks above would see an upward import and a circle: here, made up."""
    made = {"dreamscope.recipes.x": {"dreamscope.pages.y"}, "dreamscope.pages.y": {"dreamscope.recipes.x"}}
    assert any(LAYERS[layer(t)] >= LAYERS[layer(m)] for m, ts in made.items() for t in ts if layer(m) != layer(t))
    assert layer("dreamscope") == "facade" and layer("dreamscope.settings") == "base" and layer("dreamscope.io.images") == "io"


def test_no_recipe_imports_a_page_writer():
    found = [f"{m} -> {t}" for m, ts in GRAPH.items() if layer(m) == "recipes" for t in ts if layer(t) == "pages"]
    assert not found


def test_no_module_is_large():
    sizes = {
        path.relative_to(SOURCE).as_posix(): len(path.read_text(encoding="utf-8").splitlines()) for path in SOURCE.rglob("*.py")
    }
    largest = max(sizes, key=sizes.get)
    assert sizes[largest] < LARGEST, f"{largest} has {sizes[largest]} lines"


@pytest.mark.parametrize(
    "old, new",
    [
        ("render", "optvis.render"),
        ("objectives", "optvis.objectives"),
        ("images", "io.images"),
        ("jobs", "work.jobs"),
        ("batch", "work.batch"),
        ("report", "pages.probe"),
    ],
)
def test_old_module_names_still_import_and_say_where_they_went(old, new):
    import importlib

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(f"dreamscope.{old}")
    assert module is importlib.import_module(f"dreamscope.{new}")
    assert module.__spec__.name == f"dreamscope.{new}"  # the module keeps its own name
    assert getattr(dreamscope, old) is module
    if caught:  # the first import of the old name in this process warns; later ones find it in sys.modules
        assert f"dreamscope.{new}" in str(caught[0].message)


def test_names_that_moved_between_modules_say_where():
    from dreamscope.io import folders, images

    with pytest.warns(DeprecationWarning, match="dreamscope.io.folders.picture_files"):
        assert images.picture_files is folders.picture_files
    from dreamscope.objectives import layer_l2  # the README's old spelling

    assert layer_l2("stage4.2").layers == ("stage4.2",)
