"""The rooms of docs/architecture.md, held by tests: which room may import which, no import
cycle, and a pure core that loads no I/O library.

The import graph is read from the source (ast), function-level and TYPE_CHECKING imports
included: an import hidden in a function is still a dependency. A failure names the module,
the line and the import statement that break the rule.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("edge", "drivers", "dsp", "floor")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the project module it names (the deepest one that exists)
    line: int
    text: str  # the statement as written, e.g. `from edge.shell.scenario import load_scenario`

    def where(self) -> str:
        return f"{module_file(self.source)}:{self.line} `{self.text}`"


@cache
def modules() -> dict[str, Path]:
    """Every module of the project's packages: dotted name -> file."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def module_file(name: str) -> str:
    return str(modules()[name].relative_to(REPO))


def _project_module(name: str) -> str | None:
    """The deepest project module `name` is or lies in (`edge.core.seat.step` -> `edge.core.seat`)."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


def _imports_of(name: str, path: Path) -> list[Import]:
    """One Import per statement and project module it names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _project_module(alias.name)
                if target:
                    found.append(Import(name, target, node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            named: dict[str, list[str]] = {}
            for alias in node.names:
                # `from edge.api import topics` names the module edge.api.topics
                target = _project_module(f"{base}.{alias.name}") or _project_module(base)
                if target:
                    named.setdefault(target, []).append(alias.name)
            for target, names in named.items():
                text = f"from {'.' * node.level}{node.module or ''} import {', '.join(names)}"
                found.append(Import(name, target, node.lineno, text))
    return found


@cache
def graph() -> dict[str, list[Import]]:
    return {name: _imports_of(name, path) for name, path in modules().items()}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


# --- 1. no cycle ------------------------------------------------------------------------------


def _strongly_connected() -> list[list[str]]:
    """Tarjan, iteratively: the groups of modules that reach each other."""
    edges = {m: sorted({i.target for i in imps if i.target != m}) for m, imps in graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def _one_cycle(group: list[str]) -> list[Import]:
    """The shortest loop through the group's first module, as the imports that make it."""
    members = set(group)
    start = group[0]
    came_by: dict[str, Import] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for imp in graph()[node]:
            if imp.target not in members or imp.target in came_by:
                continue
            came_by[imp.target] = imp
            if imp.target == start:
                loop = [imp]
                while loop[-1].source != start:
                    loop.append(came_by[loop[-1].source])
                return loop[::-1]
            queue.append(imp.target)
    raise AssertionError(f"no loop found in {group}")  # a strongly connected group has one


def test_no_import_cycle_among_the_projects_modules() -> None:
    report = []
    for group in _strongly_connected():
        loop = "\n".join(
            f"    {imp.source} -> {imp.target}: {imp.where()}" for imp in _one_cycle(group)
        )
        report.append(f"  {len(group)} modules import each other: {', '.join(group)}\n{loop}")
    assert not report, "import cycles (move the function to the room it belongs to):\n" + "\n".join(
        report
    )


# --- 2. which room may import which -------------------------------------------------------------

# Room -> what it may import of the project (rooms or single modules; a room always may import
# itself). The longest room prefix decides a module's room. docs/architecture.md is this table.
ROOMS: dict[str, tuple[str, ...]] = {
    "dsp": (),
    "drivers": ("dsp",),
    "edge": (),  # edge/__init__.py: the version
    "edge.base": ("drivers.errors",),
    "edge.core": ("edge.base", "drivers", "dsp"),  # from drivers: input types (test below)
    "edge.api": ("edge.base",),
    "floor": ("edge.api", "edge.base"),
    "edge.shell": ("edge", "edge.base", "edge.core", "edge.api", "drivers", "dsp"),
    "edge.sim": ("edge", "edge.base", "edge.core", "edge.api", "edge.shell", "drivers", "floor"),
    "edge.ops": ("edge", "edge.base", "edge.core", "edge.api", "edge.shell", "drivers"),
    "edge.cli": ("edge", "edge.base", "edge.core", "edge.api", "edge.shell", "edge.sim")
    + ("edge.ops", "drivers", "dsp", "floor"),
}


def room_of(name: str) -> str:
    return max((r for r in ROOMS if _within(name, r)), key=len)


def _allows(entry: str, target: str) -> bool:
    """`edge` allows the module edge (the version), not every room under it."""
    return target == entry or (_within(target, entry) and room_of(target) == entry)


def test_every_module_is_in_a_room() -> None:
    assert all(any(_within(m, r) for r in ROOMS) for m in modules())


def test_each_room_imports_only_the_rooms_below_it() -> None:
    wrong = []
    for name, imports in sorted(graph().items()):
        room = room_of(name)
        for imp in imports:
            if room_of(imp.target) == room:
                continue
            if not any(_allows(allowed, imp.target) for allowed in ROOMS[room]):
                allowed = ", ".join(ROOMS[room]) or "nothing of the project"
                wrong.append(
                    f"  {imp.where()}: {room} may not import {imp.target} (allowed: {allowed})"
                )
    assert not wrong, "imports against the rooms (docs/architecture.md):\n" + "\n".join(wrong)


def test_the_floor_and_the_api_read_only_what_seats_publish() -> None:
    """Spelled out (the table above says it too): neither floor/ nor edge/api imports the seat."""
    seat = ("edge.core", "edge.shell", "edge.sim", "edge.ops", "edge.cli")
    wrong = [
        f"  {imp.where()}: {imp.source} imports {imp.target}"
        for name, imports in sorted(graph().items())
        if _within(name, "floor") or _within(name, "edge.api")
        for imp in imports
        if any(_within(imp.target, s) for s in seat)
    ]
    assert not wrong, "the floor and edge.api import the seat:\n" + "\n".join(wrong)


def test_dsp_and_drivers_stay_below_edge() -> None:
    wrong = [
        f"  {imp.where()}: {imp.source} imports {imp.target}"
        for name, imports in sorted(graph().items())
        for imp in imports
        if (_within(name, "dsp") and not _within(imp.target, "dsp"))
        or (_within(name, "drivers") and _within(imp.target, "edge"))
        or (
            room_of(name) == "edge.base"
            and room_of(imp.target) != "edge.base"
            and imp.target != "drivers.errors"
        )
    ]
    assert not wrong, (
        "dsp imports neither edge nor drivers; drivers never imports edge; edge.base only "
        "drivers.errors:\n" + "\n".join(wrong)
    )


def test_the_gadget_imports_only_what_runs_in_the_guest() -> None:
    """drivers/gadget runs in the QEMU guest on the stdlib alone: of the project it imports
    itself, drivers.errors and the input types (drivers/<kind>/events.py, stdlib only)."""
    wrong = [
        f"  {imp.where()}: {imp.target}"
        for name, imports in sorted(graph().items())
        if _within(name, "drivers.gadget")
        for imp in imports
        if not _within(imp.target, "drivers.gadget")
        and imp.target != "drivers.errors"
        and not (imp.target.startswith("drivers.") and imp.target.endswith(".events"))
        and imp.target not in ("drivers", "drivers.hid", "drivers.host")
    ]
    assert not wrong, "drivers/gadget imports beyond errors and input types:\n" + "\n".join(wrong)


# --- 3. a pure core ----------------------------------------------------------------------------

# The I/O and heavy libraries the core must not load (pydantic is fine: profiles are models).
NOT_IN_THE_CORE = (
    "paho",
    "sqlite3",
    "_sqlite3",
    "scipy",
    "numpy",
    "serial",
    "sounddevice",
    "hid",
    "hidraw",
    "usb",
    "pyudev",
    "rich",
    "amqtt",
)


def core_may_load_from_drivers(name: str) -> bool:
    """The input types the core consumes: `drivers.<kind>.events` (stdlib only), the root
    error, the sink type, and the package `__init__`s on the way (which import nothing); no
    virtual twin, no real backend, no protocol, no mixer."""
    parts = name.split(".")
    if name in ("drivers", "drivers.errors", "drivers.base"):
        return True
    if len(parts) == 2:  # drivers.<kind>: a package (its __init__ is checked by what it loads)
        return (REPO / "drivers" / parts[1] / "__init__.py").exists()
    return len(parts) == 3 and parts[2] == "events"


def core_modules() -> list[str]:
    return [m for m in modules() if _within(m, "edge.core")]


def test_the_core_names_only_input_types_of_drivers() -> None:
    wrong = [
        f"  {imp.where()}: {imp.target} is not an input type (drivers/<kind>/events.py)"
        for name in core_modules()
        for imp in graph()[name]
        if _within(imp.target, "drivers")
        and (not core_may_load_from_drivers(imp.target) or imp.target.endswith(".virtual"))
    ]
    assert not wrong, "edge.core imports drivers beyond their input types:\n" + "\n".join(wrong)


# Imports the given modules with an import spy in place, then prints, for every module loaded,
# who first asked for it (module and line), as JSON.
_SPY = r"""
import importlib, json, sys
first = {}

class Spy:
    def find_spec(self, name, path=None, target=None):
        if name not in first:
            frame = sys._getframe(1)
            while frame is not None and (
                frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib"))
                or frame.f_code.co_filename.startswith("<frozen")
            ):
                frame = frame.f_back
            who = frame.f_globals.get("__name__", "?") if frame is not None else "?"
            first[name] = [who, frame.f_lineno if frame is not None else 0]
        return None

sys.path.insert(0, sys.argv[1])
sys.meta_path.insert(0, Spy())
for name in sys.argv[2:]:
    importlib.import_module(name)
print(json.dumps({name: first.get(name) for name in sorted(sys.modules)}))
"""


def _chain(loaded: dict[str, list[object] | None], name: str) -> str:
    """`numpy <- dsp.meter:12 <- drivers.audio:20 <- edge.core.inputs:12`: who pulled it in."""
    hops = [name]
    seen = {name}
    while (why := loaded.get(name)) and why[0] not in seen and why[0] != "__main__":
        who, line = str(why[0]), why[1]
        where = f"{module_file(who)}:{line}" if who in modules() else f"{who}:{line}"
        hops.append(f"{who} ({where})")
        seen.add(who)
        name = who
    return " <- ".join(hops)


def test_importing_the_core_loads_no_io_library_and_no_driver_backend() -> None:
    """A fresh interpreter imports edge.core, edge.core.seat and every edge.core module: the
    pure core loads none of the I/O libraries nor a drivers backend, so loading a config or
    stepping a seat stays fast and small (issue 13)."""
    names = ["edge.core", "edge.core.seat", *sorted(core_modules())]
    done = subprocess.run(
        [sys.executable, "-I", "-c", _SPY, str(REPO), *names],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, list[object] | None] = json.loads(done.stdout)
    libraries = [
        name
        for name in loaded
        if name.partition(".")[0] in NOT_IN_THE_CORE and name.partition(".")[0] == name
    ]
    backends = [
        name for name in loaded if _within(name, "drivers") and not core_may_load_from_drivers(name)
    ]
    lines = [f"  {_chain(loaded, name)}" for name in sorted(libraries) + sorted(backends)]
    assert not lines, (
        "importing edge.core loads (module <- who imported it first, file:line):\n"
        + "\n".join(lines)
    )


# --- 4. the API once ---------------------------------------------------------------------------

# The wire format is built and parsed in edge/api only: the seat and the floor share it.
API_ONCE = ("parse_topic", "seat_topic", "event_payload", "event_bytes", "resend_request", "dumps")


def test_the_api_is_built_and_parsed_in_one_place() -> None:
    defined: dict[str, list[str]] = {}
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in API_ONCE:
                defined.setdefault(node.name, []).append(f"{module_file(name)}:{node.lineno}")
    wrong = [
        f"  {what}: {', '.join(where)}"
        for what, where in sorted(defined.items())
        if len(where) > 1 or not where[0].startswith("edge/api/")
    ]
    assert not wrong, "the API's builders and parsers belong once in edge/api/:\n" + "\n".join(
        wrong
    )


def test_doctor_reads_the_outbox_only_through_its_inspection_api() -> None:
    """The outbox's tables and file name are its own: doctor imports `edge.shell.outbox.inspect`
    and nothing else of the outbox, and names no table or file of it, so a change of the
    outbox's schema is made (and tested) in one room."""
    wrong = [
        f"  {imp.where()}: {imp.target}"
        for name in modules()
        if _within(name, "edge.ops.doctor")
        for imp in graph()[name]
        if _within(imp.target, "edge.shell.outbox") and imp.target != "edge.shell.outbox.inspect"
    ]
    assert wrong == [], "doctor reaches into the outbox past its inspection API:\n" + "\n".join(
        wrong
    )
    private = ("outbox.sqlite", "SELECT ", "FROM entry", "FROM meta")
    spelled = [
        f"  {path}: {word!r}"
        for name, path in modules().items()
        if _within(name, "edge.ops.doctor")
        for word in private
        if word in path.read_text()
    ]
    assert spelled == [], "doctor spells out the outbox's private layout:\n" + "\n".join(spelled)
