"""The package's layers as CONTRIBUTING.md draws them (the design guide, ../shared/ARCHITECTURE.md beside the
repository and not in it, describes the same chain): each package imports only from those below it, no module imports
another that imports it back (imports inside functions counted), and no recipe imports a page writer."""

from __future__ import annotations

import ast
import re
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


def test_contributing_draws_every_module():
    """CONTRIBUTING.md's drawing of the layers names every module of each package (models/ ends in "...")."""
    text = (Path(__file__).resolve().parents[1] / "CONTRIBUTING.md").read_text(encoding="utf-8")
    drawing = text.split("## The layers", 1)[1].split("```", 2)[1]
    drawn, package = {}, None
    for line in filter(str.strip, drawing.splitlines()):
        columns = re.split(r"\s{2,}", line.strip())
        if not line[0].isspace():  # a package's first row; the rows under it go on with its modules
            package, columns = columns[0].strip("/()"), columns[1:]
        drawn.setdefault(package, set()).update(columns[0].split() if columns else ())
    modules = [(path.parent.name if path.parent != SOURCE else "base", path.stem) for path in SOURCE.rglob("*.py")]
    missing = sorted(
        f"{where}/{name}.py"
        for where, name in modules
        if name not in ("__init__", "__main__", *drawn.get(where, ())) and where != "models"
    )
    assert not missing, f"CONTRIBUTING.md's drawing leaves out {', '.join(missing)}"


@pytest.mark.parametrize("package", ["work", "pages", "recipes", "optvis", "io"])
def test_the_readme_names_every_module_of_a_package_it_lists(package):
    """The README's "How it works" table: the row of each package that lists its modules lists them all."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith(f"| `{package}/` |"))
    named = {word.removesuffix(".py") for word in re.findall(r"`([\w.]+)`", row)}
    missing = sorted(path.name for path in (SOURCE / package).glob("*.py") if path.stem not in named | {"__init__"})
    assert not missing, f"the README's {package}/ row leaves out {', '.join(missing)}"


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


# Names that left a module when the package was split into layers (0.2), as they were spelled before it (the module's
# old name where it had one): those now in the same layer or a lower one still work and warn; those now in a higher
# layer, which the module may not import, or folded into a recipe's record, fail with an AttributeError that says
# where to look.
STILL_WORK = [
    ("jobs", "redo", "work.redo"),  # also ds.redo, as ever
    ("jobs", "resume_zoom", "work.redo"),
    ("jobs", "redo_output", "work.redo"),
    ("jobs", "compare", "work.redo"),
    ("jobs", "MAX_SHEET_UNITS", "recipes.exemplars"),
    ("batch", "remove_debris", "io.files"),
    ("report", "move_into_place", "io.files"),
    ("report", "new_folder_beside", "io.files"),
    ("cli", "EXIT_INTERRUPTED", "cli.main"),
    ("cli", "SAMPLES", "cli.parser"),
    ("cli", "FLAGS", "work.flags"),
    ("cli", "VIDEO_OUTPUTS", "work.catalogue"),
]
SAY_WHERE = [
    ("recipes.microscope", "microscope_iter", "work.microscope.microscope_iter"),  # the old README's spelling
    ("recipes.microscope", "microscope", "work.microscope.microscope"),
    ("recipes.microscope", "plan", "work.microscope.plan"),
    ("recipes.microscope", "block_name", "pages.microscope.block_name"),
    ("recipes.microscope", "SHARD_PICTURES", "work.batch.SHARD_PICTURES"),
    ("recipes.atlas", "collection_items", "work.atlas.collection_items"),
    ("recipes.atlas", "SHARD_PICTURES", "work.batch.SHARD_PICTURES"),
    ("recipes.exemplars", "sheet", "pages.sheets.exemplar_sheet"),
    ("recipes.exemplars", "SHEET_TILE", "pages.sheets.EXEMPLAR_TILE"),
    ("jobs", "INPUTS", "work.catalogue.get"),
    ("jobs", "exemplar_sheet", "work.jobs.run"),
    ("batch", "SUFFIX", "work.batch.output_suffix"),
    ("cli", "TARGET_FLAGS", "work.flags.CHOICES"),
    ("recipes.visualize", "contact_sheet", "pages.sheets.contact_sheet"),
]


def _old(module: str):
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the old module name's own warning, tested above
        return importlib.import_module(f"dreamscope.{module}")


@pytest.mark.parametrize("module, name, new", STILL_WORK)
def test_a_name_that_moved_within_its_layer_or_down_still_works_and_says_where(module, name, new):
    with pytest.warns(DeprecationWarning, match=re.escape(f"moved to dreamscope.{new}.{name}")):
        found = getattr(_old(module), name)
    assert found is getattr(_old(new), name)


@pytest.mark.parametrize("module, name, new", SAY_WHERE)
def test_a_name_that_moved_up_a_layer_or_into_a_record_says_where(module, name, new):
    old = _old(module)
    with pytest.raises(AttributeError, match=f"has no attribute '{name}': .*" + re.escape(f"dreamscope.{new}")):
        getattr(old, name)
    assert not hasattr(old, name)  # still an AttributeError: hasattr and getattr(..., default) work as ever
    where, _, attribute = new.rpartition(".")
    assert hasattr(_old(where), attribute)  # the place named is real
    with pytest.raises(AttributeError, match=r"has no attribute 'nope'$"):
        old.nope  # noqa: B018  (any other name: the plain error)
