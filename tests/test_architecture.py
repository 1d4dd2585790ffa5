"""The architecture's rules, read from the source: dependencies point one way, no import
hides in a function body, and no function grows past 120 lines of code.

Layers, top to bottom (``docs/architecture.md``)::

    build_scripts  ->  sim, formal  ->  blocks  ->  hdl  ->  golden (mode definitions)
                                                \\->  golden
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("golden", "hdl", "blocks", "sim", "formal", "build_scripts")

#: What each package may import from qdp (itself always).
ALLOWED = {
    "golden": set(),
    "blocks": {"golden", "hdl"},
    "sim": {"golden", "hdl", "blocks"},
    "formal": {"golden", "hdl", "blocks"},
    "build_scripts": {"golden", "hdl", "blocks", "sim", "formal"},
}
#: hdl may read golden's mode and format definitions, nothing else of it.
HDL_FROM_GOLDEN = {"golden.rounding", "golden.saturation", "golden.lfsr", "golden.floats",
                   "golden.double_quant",
                   "golden.mx", "golden.nf4"}
#: Optional dependencies that a function may import where it needs them (with a clear
#: error when missing); everything else is imported at the top of its module.
OPTIONAL = {"onnx", "onnxruntime", "torch", "sklearn", "z3", "matplotlib",
            "dask", "distributed", "dask_jobqueue", "tqdm"}
#: Required dependencies imported where they are first used because their import is slow
#: and every simulator launch would pay it (ml_dtypes: about 0.5 s of CPU).
SLOW = {"ml_dtypes"}
MAX_CODE_LINES = 120


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            name = path.stem
            yield package, ("" if name == "__init__" else name), path


def _imports(package, module, tree):
    """``(node, target, in_function)`` for every import; qdp targets as
    ``"<package>.<module>"`` (or ``"<package>"``), others as their top-level name."""
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef,
                                                            ast.AsyncFunctionDef))]
    inside = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names = [node.module]
            else:
                # Relative: "." is this package, ".." is qdp.
                base = [package] if node.level == 1 else []
                if node.module:
                    names = [".".join(base + [node.module])]
                else:
                    names = [".".join(base + [a.name]) for a in node.names]
                names = ["qdp." + n for n in names]
        else:
            continue
        for name in names:
            target = name[len("qdp."):] if name.startswith("qdp.") else \
                name.split(".")[0]
            yield node, target, id(node) in inside


def _violations():
    found = []
    for package, module, path in _modules():
        tree = ast.parse(path.read_text())
        where = f"{package}/{path.name}"
        for node, target, in_function in _imports(package, module, tree):
            head = target.split(".")[0]
            line = f"{where}:{node.lineno}"
            if head in PACKAGES and head != package:
                if package == "hdl":
                    if not any(target == g or target.startswith(g + ".")
                               for g in HDL_FROM_GOLDEN):
                        found.append(f"{line}: hdl imports {target}")
                elif head not in ALLOWED[package]:
                    found.append(f"{line}: {package} imports {target}")
            if in_function and head not in OPTIONAL | SLOW:
                found.append(f"{line}: import of {target} inside a function")
    return found


def test_dependencies_point_one_way_and_imports_sit_at_module_level():
    assert _violations() == []


def test_the_import_check_sees_what_it_must():
    """The walker on snippets: a lazy upward import, a relative sibling, an optional
    dependency in a function."""
    code = ("from ..build_scripts.blocks import x\n"
            "def f():\n    from ..build_scripts import cli\n    import onnxruntime\n"
            "    from . import payload\n")
    rows = [(target, inside) for _, target, inside in
            _imports("sim", "bench", ast.parse(code))]
    assert rows == [("build_scripts.blocks", False), ("build_scripts", True),
                    ("onnxruntime", True), ("sim.payload", True)]


def _code_lines(node, lines):
    docstring = ast.get_docstring(node, clean=False)
    skip = set()
    if docstring is not None:
        first = node.body[0]
        skip = set(range(first.lineno, first.end_lineno + 1))
    return sum(1 for number in range(node.lineno, node.end_lineno + 1)
               if number not in skip and lines[number - 1].strip()
               and not lines[number - 1].strip().startswith("#"))


def test_no_function_over_120_lines_of_code():
    long = []
    for package, _, path in _modules():
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(node, lines)
                if n > MAX_CODE_LINES:
                    long.append(f"{package}/{path.name}:{node.lineno} {node.name}: {n}")
    assert long == []


@pytest.mark.parametrize("body,count", [("    x = 1\n" * 121, 122),
                                        ('    """doc\n    doc"""\n' + "    # c\n\n" * 5
                                         + "    x = 1\n" * 3, 4)])
def test_code_line_count(body, count):
    code = "def f():\n" + body
    (node,) = ast.parse(code).body
    assert _code_lines(node, code.splitlines()) == count
