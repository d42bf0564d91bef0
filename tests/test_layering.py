"""The package's rooms stay in order (ARCHITECTURE.md): no import circle, no import from a
room above, no coplay import hidden inside a function (except the CLI's lazy dispatch).

Reads the code with `ast`; imports nothing of coplay.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "coplay"
# bottom to top: a module imports only from its own room and the rooms below it
LAYERS = ["config", "runs", "zoo", "envs", "agents", "data", "algos", "populations", "eval",
          "experiments", "web", "cli", "testing"]  # testing: reference bridges, tests only


def _modules() -> dict[str, Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        name = ".".join(f.relative_to(ROOT.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def _imports(mods: dict[str, Path]) -> dict[str, list[tuple[str, bool]]]:
    """module -> [(imported coplay module, inside a function?)]."""
    out: dict[str, list[tuple[str, bool]]] = {}
    for m, f in mods.items():
        found: list[tuple[str, bool]] = []
        tree = ast.parse(f.read_text())

        def visit(node, in_function: bool, m=m, found=found):
            for child in ast.iter_child_nodes(node):
                inner = in_function or isinstance(child, (ast.FunctionDef,
                                                          ast.AsyncFunctionDef))
                if isinstance(child, ast.Import):
                    names = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom) and child.module:
                    # `from pkg import mod` depends on the module, `from pkg import name` on pkg
                    subs = [f"{child.module}.{a.name}" for a in child.names]
                    names = [x for x in subs if x in mods]
                    if len(names) < len(subs):
                        names.append(child.module)
                else:
                    names = []
                for name in names:
                    if name in mods and name != m:
                        found.append((name, inner))
                visit(child, inner, m, found)

        visit(tree, False)
        out[m] = found
    return out


# the driver layer's wings, bottom to top; its modules outside a wing (refs, run_agents,
# zoo_agents, cli_common: agent references and their readers) are its floor, below every wing
WINGS = ["ipd", "overcooked", "populations", "coot", "zoo"]


def _wing(module: str) -> int:
    """-1 for the driver layer's floor, a wing's rank, None outside coplay.experiments."""
    parts = module.split(".")
    if parts[:2] != ["coplay", "experiments"] or len(parts) < 3:
        return None
    return WINGS.index(parts[2]) if parts[2] in WINGS else -1


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else "cli"
    return LAYERS.index(part) if part in LAYERS else -1


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def test_no_import_circle_no_upward_import_no_hidden_import():
    mods = _modules()
    imports = _imports(mods)
    graph = {m: {t for t, _ in ts} for m, ts in imports.items()}
    assert not _circles(graph), _circles(graph)
    upward = [f"{m} -> {t}" for m, ts in imports.items() for t, _ in ts
              if _layer(m) >= 0 and _layer(t) > _layer(m)]
    assert not upward, upward
    hidden = [f"{m} -> {t}" for m, ts in imports.items() for t, inner in ts
              if inner and m != "coplay.cli"]
    assert not hidden, hidden


def test_no_wing_imports_a_wing_above_it_nor_does_the_floor_import_a_wing():
    imports = _imports(_modules())
    wrong = [f"{m} -> {t}" for m, ts in imports.items() for t, _ in ts
             if _wing(m) is not None and _wing(t) is not None and _wing(t) > _wing(m)]
    assert not wrong, wrong
    found = {m.split(".")[2] for m in _modules() if _wing(m) not in (None, -1)}
    assert found == set(WINGS), found  # a new wing gets its place in WINGS


def test_the_check_sees_a_circle_and_an_upward_import():
    assert _circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _layer("coplay.experiments.ipd.train") > _layer("coplay.algos.a2c")
    assert _layer("coplay.eval.crossplay") > _layer("coplay.populations.hsp")
    assert _layer("coplay.testing.jaxmarl") > _layer("coplay.cli")  # nothing imports it
    assert _wing("coplay.experiments.zoo.export") > _wing("coplay.experiments.coot.eval") \
        > _wing("coplay.experiments.refs") == -1
    assert _wing("coplay.experiments.coot") == 3 and _wing("coplay.agents.gpt") is None
