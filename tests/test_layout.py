"""The package's shape: stages that import only backwards, and no import cycle anywhere.

Every import counts, lazy ones inside functions too (only `if TYPE_CHECKING:` blocks are
exempt): a cycle through a lazy import is still two modules that each need the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# What each room may import from the project (besides itself, errors, _version and config).
ALLOWED = {
    "landscape.core": {"landscape.core"},
    "landscape.data": {"landscape.core"},
    "landscape.models": {"landscape.core"},
    "landscape.train": {"landscape.core", "landscape.data", "landscape.models", "landscape.store"},
    "landscape.store": set(),
    # `landscape import`: another way into a train store, beside training
    "landscape.importer": {
        "landscape.core",
        "landscape.data",
        "landscape.models",
        "landscape.store",
    },
    "landscape.measures": {
        "landscape.core",
        "landscape.data",
        "landscape.models",
        "landscape.store",
        "landscape.importer",  # rebuilding an imported store's model and data
    },
    "landscape.report": {"landscape.store"},
    # Probe: the measures on a caller's own model, and their figures
    "landscape.probe": {
        "landscape.core",
        "landscape.data",
        "landscape.models",
        "landscape.measures",
        "landscape.store",
        "landscape.report",
    },
}
SHARED = ("landscape.errors", "landscape._version", "landscape.config", "landscape.presets")


def _modules() -> dict[str, Path]:
    out = {}
    for path in [*REPO.joinpath("landscape").rglob("*.py"), *REPO.joinpath("cli").rglob("*.py")]:
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _type_checking_only(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids |= {id(n) for n in ast.walk(node)}
    return ids


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = _type_checking_only(tree)
    names = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import submodule` needs the submodule; `from mod import name`, mod
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            names |= subs | ({node.module} if len(subs) < len(node.names) else set())
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {_owner(n, modules) for n in names} - {""}


def _owner(name: str, modules: dict[str, Path]) -> str:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    # the package facade `landscape` re-exports the API; modules never go through it
    return {m: _imports(p, modules) - {m, "landscape"} for m, p in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str]:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return [*stack[stack.index(d) :], d]
            if d not in state and (found := visit(d)):
                return found
        state[m] = 2
        stack.pop()
        return []

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return []


def test_no_import_cycle():
    cycle = _cycle(_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_stages_import_only_backwards():
    bad = []
    for module, deps in _graph().items():
        room = next((r for r in ALLOWED if module == r or module.startswith(r + ".")), None)
        if room is None:
            continue
        for dep in deps:
            if dep.startswith(SHARED) or dep == room or dep.startswith(room + "."):
                continue
            if not dep.startswith(("landscape", "cli")):
                continue
            if not any(dep == a or dep.startswith(a + ".") for a in ALLOWED[room]):
                bad.append(f"{module} imports {dep}")
    assert not bad, "\n".join(sorted(bad))


def test_the_measures_never_import_the_cli_trainer_or_report():
    for module, deps in _graph().items():
        if module.startswith("landscape.measures"):
            assert not {d for d in deps if d.startswith(("cli", "landscape.report",
                                                         "landscape.train"))}, module  # fmt: skip
