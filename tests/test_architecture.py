"""The architecture as a test, so that a regression fails ``make lint``.

DESIGN.md draws one direction: channels and web point into the core, never the reverse, and
only ``storage/`` talks to the database. Reviews forget; this reads the import graph (grimp,
TYPE_CHECKING and function-level imports included) and checks four things:

- no import cycles between modules;
- layers point down: a module imports only its own layer or lower ones (:data:`LAYERS`);
- ``common`` imports no other deskbot package;
- a third-party library that belongs to one adapter is imported only there
  (:data:`THIRD_PARTY_HOMES`; ruff's TID251 checks SQLAlchemy and Alembic a second time).

The checks are plain functions over a graph: the tests at the bottom run them on a throwaway
package tree with one violation of each kind, so a check that cannot fail would show.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]

PACKAGES = ("common", "bot", "intents", "handlers", "knowledge", "desk", "storage")

LAYERS: tuple[tuple[str, ...], ...] = (
    # top: may import everything below
    ("bot.cli",),  # the `deskbot` commands: build an App and run a front
    ("bot.web", "bot.rasa_actions"),  # HTTP fronts served around a built App
    ("bot.worker",),  # `deskbot worker`: runs the queued intake's turns over a built App
    ("bot.app", "bot.leader"),  # the composition root; the leader runs its singletons in one process
    ("bot.channels", "bot.jobs", "bot.metrics", "bot.intake"),  # adapters, jobs, metrics, the front's queue
    ("bot.config", "bot.logs"),  # the process's settings and logging: read at the edges, passed down
    ("bot.pipeline",),  # one turn: dedupe, customer, state, understand, handle, commit
    ("handlers", "desk"),  # the customer dialogue and the agents' services
    ("knowledge",),  # the shop's data as the bot understands it
    ("intents",),  # classifier and entities: knows no shop and no store
    ("storage",),  # the only package that talks to the database and Redis
    ("common", "bot"),  # errors and messages every layer shares; `bot` is only its bare __init__
    # bottom: imports no other deskbot package
)
"""Top to bottom. An entry covers its module and everything under it, unless other entries
split it (``bot``): then it covers only its own ``__init__``, and a new module under it must be
given a layer here."""

THIRD_PARTY_HOMES: Mapping[str, tuple[str, ...]] = {
    "sqlalchemy": ("storage",),
    "alembic": ("storage",),
    "aiogram": ("bot.channels.telegram",),
    "telegram": ("bot.channels.telegram",),  # python-telegram-bot
    "prometheus_client": ("bot.metrics",),  # the core reports to observers; bot/metrics.py owns every metric
}
"""A library → the only packages or modules that may import it."""

Edge = tuple[str, str]
"""(importer, imported)"""


# -- the checks: plain functions over a graph ---------------------------------------------


def build_graph(packages: Sequence[str]) -> grimp.ImportGraph:
    """The import graph of ``packages``, with third-party packages as one node each.

    No cache (grimp's would be a directory to ignore, and the build takes a fraction of a second)."""
    return grimp.build_graph(*packages, include_external_packages=True, cache_dir=None)


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def own_modules(graph: grimp.ImportGraph, packages: Sequence[str]) -> set[str]:
    return {module for module in graph.modules if any(_under(module, package) for package in packages)}


def import_cycles(graph: grimp.ImportGraph, packages: Sequence[str]) -> list[list[str]]:
    """Every set of modules that import each other (a strongly connected component of two or
    more), each sorted; Tarjan's algorithm, iterative so that depth is no limit."""
    modules = own_modules(graph, packages)
    successors = {module: sorted(graph.find_modules_directly_imported_by(module) & modules) for module in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(modules):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(successors[root]))]
        while work:
            module, pending = work[-1]
            for successor in pending:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(successors[successor])))
                    break
                if successor in on_stack:
                    low[module] = min(low[module], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return sorted(components)


def _loop_through(graph: grimp.ImportGraph, component: Sequence[str]) -> list[str]:
    """The shortest chain from the component's first module back to itself, within it."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for module in frontier:
            for successor in sorted(graph.find_modules_directly_imported_by(module) & members):
                if successor == start:
                    chain = [module]
                    while chain[-1] != start:
                        chain.append(came_from[chain[-1]])
                    return [*reversed(chain), start]
                if successor not in came_from:
                    came_from[successor] = module
                    following.append(successor)
        frontier = following
    raise AssertionError(f"{component} is not a cycle")


def describe_import(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    lines = graph.get_import_details(importer=importer, imported=imported)
    where = "; ".join(f"line {line['line_number']}: {line['line_contents']}" for line in lines)
    return f"{importer} imports {imported} ({where})"


def describe_cycle(graph: grimp.ImportGraph, component: Sequence[str]) -> str:
    """The loop through the component's first module, then every import inside it: the ones
    to cut from."""
    inside = [
        (importer, imported)
        for importer in component
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & set(component))
    ]
    lines = [
        f"{len(component)} modules import each other: {', '.join(component)}",
        "    one loop: " + " → ".join(_loop_through(graph, component)),
        *(f"    {describe_import(graph, importer, imported)}" for importer, imported in inside),
    ]
    return "\n".join(lines)


def _covering_entry(module: str, entries: Iterable[str]) -> str | None:
    """The most specific layer entry covering ``module``; an entry split by others covers only itself."""
    entries = list(entries)
    covering = [
        entry
        for entry in entries
        if module == entry
        or (module.startswith(entry + ".") and not any(other.startswith(entry + ".") for other in entries))
    ]
    return max(covering, key=len, default=None)


def layer_of(module: str, layers: Sequence[Sequence[str]]) -> int | None:
    """The module's layer as an index into ``layers`` (0 at the top), or None when unplaced."""
    entry = _covering_entry(module, [entry for layer in layers for entry in layer])
    if entry is None:
        return None
    return next(depth for depth, layer in enumerate(layers) if entry in layer)


def unplaced_modules(graph: grimp.ImportGraph, layers: Sequence[Sequence[str]], packages: Sequence[str]) -> list[str]:
    return sorted(module for module in own_modules(graph, packages) if layer_of(module, layers) is None)


def upward_imports(graph: grimp.ImportGraph, layers: Sequence[Sequence[str]], packages: Sequence[str]) -> list[Edge]:
    """Imports from a module to one in a higher layer (direct imports: if every one points
    down or sideways, so does every chain)."""
    modules = own_modules(graph, packages)
    found: list[Edge] = []
    for importer in sorted(modules):
        importer_layer = layer_of(importer, layers)
        if importer_layer is None:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & modules):
            imported_layer = layer_of(imported, layers)
            if imported_layer is not None and imported_layer < importer_layer:
                found.append((importer, imported))
    return found


def describe_upward(graph: grimp.ImportGraph, layers: Sequence[Sequence[str]], edge: Edge) -> str:
    importer, imported = edge

    def named(module: str) -> str:
        layer = layer_of(module, layers)
        assert layer is not None
        return f"layer {layer + 1} ({' | '.join(layers[layer])})"

    return f"{describe_import(graph, importer, imported)}: {named(importer)} is below {named(imported)}"


def foreign_imports(graph: grimp.ImportGraph, package: str, packages: Sequence[str]) -> list[Edge]:
    """Imports from ``package`` into any other of ``packages``."""
    modules = own_modules(graph, packages)
    return sorted(
        (importer, imported)
        for importer in modules
        if _under(importer, package)
        for imported in graph.find_modules_directly_imported_by(importer) & modules
        if not _under(imported, package)
    )


def misplaced_imports(graph: grimp.ImportGraph, homes: Mapping[str, Sequence[str]]) -> list[Edge]:
    """Imports of a third-party package from outside the packages or modules it belongs to."""
    return sorted(
        (importer, library)
        for library, allowed in homes.items()
        if library in graph.modules
        for importer in graph.find_modules_that_directly_import(library)
        if not any(_under(importer, home) for home in allowed)
    )


def session_handle_uses(root: Path, packages: Sequence[str], home: str = "storage") -> list[str]:
    """``x.db`` outside ``storage/``: the ticket session's SQLAlchemy handle, used where no import shows it.

    Banning the import (ruff TID251) does not stop ``tx.db.execute(...)`` on the session a
    handler is given; the port holds only if nothing outside storage reaches for the handle.
    """
    found = []
    for package in packages:
        if package == home:
            continue
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            found += [
                f"{path.relative_to(root)}:{node.lineno}: .db"
                for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and node.attr == "db"
            ]
    return found


# -- the real tree ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deskbot() -> grimp.ImportGraph:
    return build_graph(PACKAGES)


def test_no_import_cycles(deskbot: grimp.ImportGraph) -> None:
    cycles = import_cycles(deskbot, PACKAGES)
    assert not cycles, "\n".join(describe_cycle(deskbot, component) for component in cycles)


def test_every_module_has_a_layer(deskbot: grimp.ImportGraph) -> None:
    unplaced = unplaced_modules(deskbot, LAYERS, PACKAGES)
    assert not unplaced, f"give these modules a layer in LAYERS ({__file__}): {', '.join(unplaced)}"


def test_layers_point_down(deskbot: grimp.ImportGraph) -> None:
    upward = upward_imports(deskbot, LAYERS, PACKAGES)
    assert not upward, "\n".join(describe_upward(deskbot, LAYERS, edge) for edge in upward)


def test_common_imports_no_other_deskbot_package(deskbot: grimp.ImportGraph) -> None:
    foreign = foreign_imports(deskbot, "common", PACKAGES)
    assert not foreign, "\n".join(describe_import(deskbot, *edge) for edge in foreign)


def test_third_party_libraries_stay_in_their_adapters(deskbot: grimp.ImportGraph) -> None:
    misplaced = misplaced_imports(deskbot, THIRD_PARTY_HOMES)
    assert not misplaced, "\n".join(
        f"{describe_import(deskbot, *edge)}: only {', '.join(THIRD_PARTY_HOMES[edge[1]])} may" for edge in misplaced
    )


def test_only_storage_reaches_for_the_sessions_sqlalchemy_handle() -> None:
    uses = session_handle_uses(ROOT, PACKAGES)
    assert not uses, "ask the store in the domain's words instead:\n" + "\n".join(uses)


# -- the checks fail when they should ----------------------------------------------------

FIXTURE_PACKAGES = ("archfx_top", "archfx_core", "archfx_base", "archfx_loose")
FIXTURE_LAYERS = (("archfx_top.screen",), ("archfx_core",), ("archfx_base", "archfx_top"))
FIXTURE_TREE = {
    "archfx_top/__init__.py": "",
    "archfx_top/screen.py": "from archfx_core import a\n",  # down: fine
    "archfx_top/extra.py": "",  # archfx_top is split: this one has no layer
    "archfx_core/__init__.py": "",
    # a → b (TYPE_CHECKING) → c → a (inside a function): one cycle of three
    "archfx_core/a.py": "from archfx_base import errors\nfrom archfx_core import b\n",
    "archfx_core/b.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from archfx_core import c\n",
    "archfx_core/c.py": "def later():\n    from archfx_core import a\n",
    "archfx_core/store.py": "import sqlalchemy\n",  # its home
    "archfx_core/report.py": "from sqlalchemy.orm import Session\n",  # outside its home
    "archfx_base/__init__.py": "",
    "archfx_base/errors.py": "class Oops(Exception):\n    pass\n",
    "archfx_base/leak.py": "from archfx_top import screen\n",  # up, and out of the bottom package
    "archfx_loose/__init__.py": "",  # in no layer
}


@pytest.fixture
def violating_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> grimp.ImportGraph:
    for name, text in FIXTURE_TREE.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    return build_graph(FIXTURE_PACKAGES)


def test_a_cycle_is_reported_with_its_chain(violating_tree: grimp.ImportGraph) -> None:
    cycles = import_cycles(violating_tree, FIXTURE_PACKAGES)

    assert cycles == [["archfx_core.a", "archfx_core.b", "archfx_core.c"]]
    described = describe_cycle(violating_tree, cycles[0])
    assert described.splitlines()[:2] == [
        "3 modules import each other: archfx_core.a, archfx_core.b, archfx_core.c",
        "    one loop: archfx_core.a → archfx_core.b → archfx_core.c → archfx_core.a",
    ]
    assert "archfx_core.c imports archfx_core.a (line 2: from archfx_core import a)" in described


def test_an_upward_import_and_an_unplaced_module_are_reported(violating_tree: grimp.ImportGraph) -> None:
    upward = upward_imports(violating_tree, FIXTURE_LAYERS, FIXTURE_PACKAGES)

    assert upward == [("archfx_base.leak", "archfx_top.screen")]
    assert describe_upward(violating_tree, FIXTURE_LAYERS, upward[0]) == (
        "archfx_base.leak imports archfx_top.screen (line 1: from archfx_top import screen): "
        "layer 3 (archfx_base | archfx_top) is below layer 1 (archfx_top.screen)"
    )
    assert unplaced_modules(violating_tree, FIXTURE_LAYERS, FIXTURE_PACKAGES) == ["archfx_loose", "archfx_top.extra"]


def test_the_bottom_package_importing_another_is_reported(violating_tree: grimp.ImportGraph) -> None:
    assert foreign_imports(violating_tree, "archfx_base", FIXTURE_PACKAGES) == [
        ("archfx_base.leak", "archfx_top.screen")
    ]


def test_a_library_outside_its_home_is_reported(violating_tree: grimp.ImportGraph) -> None:
    homes = {"sqlalchemy": ("archfx_core.store",), "aiogram": ("archfx_top",)}

    assert misplaced_imports(violating_tree, homes) == [("archfx_core.report", "sqlalchemy")]


RUFF_PROBE = textwrap.dedent(
    '''\
    """Reaches for the database the three ways an import can hide."""

    from __future__ import annotations

    from typing import TYPE_CHECKING

    import sqlalchemy

    if TYPE_CHECKING:
        from sqlalchemy.ext.asyncio import AsyncSession


    def upgrade(session: AsyncSession | None = None) -> None:
        from alembic import command

        print(sqlalchemy, command, session)
    '''
)


@pytest.mark.parametrize(
    ("path", "banned"),
    [
        ("bot/web/api/probe.py", True),
        ("desk/probe.py", True),
        ("common/probe.py", True),
        ("storage/probe.py", False),
        ("storage/records/probe.py", False),
        ("tests/probe.py", False),
        ("bench/probe.py", False),
    ],
)
def test_ruff_bans_sqlalchemy_and_alembic_outside_storage(path: str, banned: bool) -> None:
    """The pyproject.toml that ``make lint`` uses (per-file-ignores resolve from the repository root)."""
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", "pyproject.toml", "--no-cache"]
        + ["--output-format", "concise", "--stdin-filename", path, "-"],
        input=RUFF_PROBE,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    if banned:
        assert ruff.returncode == 1, ruff.stdout + ruff.stderr
        flagged = [line.split(" ", 2)[:2] for line in ruff.stdout.splitlines() if " TID251 " in line]
        assert flagged == [[f"{path}:7:8:", "TID251"], [f"{path}:10:5:", "TID251"], [f"{path}:14:5:", "TID251"]]
    else:
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_a_session_handle_outside_storage_is_reported(tmp_path: Path) -> None:
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "records.py").write_text("async def f(tx):\n    await tx.db.flush()\n")
    (tmp_path / "desk").mkdir()
    (tmp_path / "desk" / "actions.py").write_text("async def f(tx):\n    x = 1\n    return await tx.db.get(x)\n")
    assert session_handle_uses(tmp_path, ("storage", "desk")) == ["desk/actions.py:3: .db"]
