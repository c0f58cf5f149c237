"""How the converters are wired, read from the source: `convert/` has no import cycles, its command
line imports the tools and no tool imports it, and the runtime loads a converter only when it
converts (inside a function), never when it is imported."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONVERT = "lsg_edge.convert"
# Modules that are the command line, and may import every tool.
COMMAND_LINE = {f"{CONVERT}.cli", f"{CONVERT}.__main__"}


def _module_name(path: Path) -> str:
    """The installed name of a source file (convert/ installs as lsg_edge.convert)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "convert":
        parts = ["lsg_edge", *parts]
        parts[1] = "convert"
    return ".".join(parts)


def _is_script_block(node: ast.AST) -> bool:
    """`if __name__ == "__main__":` — code of the `__main__` module, run only as a script."""
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If) and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name) and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Absolute names of the modules `path` imports (and of `from x import y`, x.y too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_script_block(child):
                continue
            if top_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - (child.level - 1)] if child.level else []
                module = ".".join([*base, *([child.module] if child.module else [])])
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _convert_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in sorted((ROOT / "convert").glob("*.py"))}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph`, as the list of modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := walk(target)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := walk(start)):
            return found
    return None


def test_convert_has_no_import_cycles() -> None:
    graph = _convert_graph()
    assert f"{CONVERT}.merge_lora" in graph and graph[f"{CONVERT}.merge_lora"], "the graph was not read"
    assert _cycle(graph) is None, " → ".join(_cycle(graph))


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_tool_imports_the_command_line() -> None:
    graph = _convert_graph()
    assert f"{CONVERT}.merge_lora" in graph[f"{CONVERT}.cli"]
    offenders = sorted(name for name, targets in graph.items() if name not in COMMAND_LINE and targets & COMMAND_LINE)
    assert offenders == []


def test_the_runtime_imports_converters_only_when_it_converts() -> None:
    offenders = sorted(
        _module_name(path)
        for path in sorted((ROOT / "lsg_edge").rglob("*.py"))
        if any(m == CONVERT or m.startswith(CONVERT + ".") for m in _imports(path, top_level_only=True))
    )
    assert offenders == []
    # …and it does call them: the Whisper model cache converts on first use.
    assert f"{CONVERT}.whisper_onnx" in _imports(ROOT / "lsg_edge" / "speech" / "models.py")
