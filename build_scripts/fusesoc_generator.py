"""qdp's FuseSoC generator: a user's core ``generate:``\\ s a qdp block with parameters.

Write the generator core once, into a folder on FuseSoC's cores root::

    python -m qdp.build_scripts.fusesoc_generator --library DIR
    # DIR/qdp-generators.core (core qdp:qdp:generators, generator "qdp")
    # DIR/qdp_fusesoc_generator.py (the script the generator runs)

then a user core names it and gives the parameters::

    generate:
      quantizer_gen:
        generator: qdp
        parameters: {block: quantizer, lanes: 2, name: my_quantizer}
    targets:
      sim: {generate: [quantizer_gen], ...}

The parameters are ``block`` (a ``qdp list`` name), the block's parameters by their
Python names (``in_width``, not ``--in-width``; YAML ints, bools, lists, strings, ``none``
or null for a choice that takes none), and optionally ``name`` (the module name),
``target`` (``ecp5``/``ice40``) and ``interface`` (``amaranth``/``axis``).

FuseSoC's generator protocol (``fusesoc/edalizer.py``, ``Ttptttg``): it runs
``<interpreter> <generator root>/<command> <name>_input.yml`` in a fresh working folder;
the input holds ``files_root``, ``gapi`` (``"1.0"``), ``parameters`` and ``vlnv`` (the user
core's VLNV with ``-<generate name>`` appended to its name). The generator writes files
and a ``.core`` into the working folder; FuseSoC parses every ``.core`` there and adds it
to the build. This one writes ``<module>.v``, any simulation model of an ECP5 primitive,
the manifest ``<module>.json`` and ``<name part of vlnv>.core``
(:func:`qdp.build_scripts.fusesoc.core_file` named by that VLNV). A bad parameter exits
with status 2 and qdp's one line (``qdp: error: lanes: ...``) on stderr, which FuseSoC
shows before it reports the generator failed.

The generator core's interpreter is ``python3`` on ``PATH`` by default (the core is
portable): run FuseSoC with the Python environment qdp is installed in active, or write
the library with ``--interpreter`` (e.g. ``sys.executable``). The input is YAML, read with
PyYAML, which FuseSoC depends on (qdp itself does not).
"""

import argparse
import json
import sys
from pathlib import Path

import yaml

from ..blocks import BLOCKS, generate, get_block
from ..sim.ecp5 import write_models
from .fusesoc import core_file

__all__ = ["GENERATOR_CORE", "GENERATOR_SCRIPT", "GENERATOR_VLNV", "write_generator_core",
           "run", "main"]

GENERATOR_CORE = "qdp-generators.core"
GENERATOR_SCRIPT = "qdp_fusesoc_generator.py"
GENERATOR_VLNV = "qdp:qdp:generators:0"
#: Generator parameters that are not the block's: where and how to export it.
EXPORT_OPTIONS = ("name", "target", "interface")

_SCRIPT = '''"""FuseSoC runs this with the generator input (qdp.build_scripts.fusesoc_generator)."""
import sys

try:
    from qdp.build_scripts.fusesoc_generator import main
except ImportError as error:
    sys.exit(f"qdp: error: the qdp generator runs with {sys.executable}, which cannot "
             f"import qdp ({error}); run FuseSoC where qdp is installed, or write the "
             f"library with --interpreter")
sys.exit(main(sys.argv[1:]))
'''


def write_generator_core(directory, *, interpreter="python3"):
    """Write :data:`GENERATOR_CORE` (the core ``qdp:qdp:generators:0`` that declares the
    generator ``qdp``) and its script into ``directory``; return both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    core = directory / GENERATOR_CORE
    script = directory / GENERATOR_SCRIPT
    core.write_text("\n".join([
        "CAPI=2:",
        f"name: {json.dumps(GENERATOR_VLNV)}",
        'description: "qdp: bit-exact quantized datapaths; generator qdp writes a block"',
        "",
        "generators:",
        "  qdp:",
        f"    interpreter: {json.dumps(str(interpreter))}",
        f"    command: {json.dumps(GENERATOR_SCRIPT)}",
        "    description: \"A qdp block: parameters block, the block's parameters by "
        "their Python names, optional name, target, interface\"",
        "",
    ]))
    script.write_text(_SCRIPT)
    return core, script


def _block_params(block, parameters):
    """The block's parameters from the generator's: ``none`` is None where a choice takes
    it (as on the CLI)."""
    spec = get_block(block)
    params = {}
    for key, value in parameters.items():
        param = spec.params.get(key)
        if param is not None and param.kind == "choice" and isinstance(value, str) \
                and value.lower() == "none" and "none" in param.choices:
            value = None
        params[key] = value
    return params


def run(input_file, directory="."):
    """Run the generator on FuseSoC's ``input_file``, writing into ``directory``; return
    the core's path. Bad input is a ``ValueError``/``TypeError`` naming it."""
    try:
        data = yaml.safe_load(Path(input_file).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"generator input: cannot read {input_file}: {error}") from None
    if not isinstance(data, dict) or "vlnv" not in data:
        raise ValueError(f"generator input: {input_file} is not a FuseSoC generator input "
                         f"(no vlnv)")
    parameters = dict(data.get("parameters") or {})
    block = parameters.pop("block", None)
    if block is None:
        raise ValueError(f"block: the qdp generator needs a block parameter, one of "
                         f"{', '.join(BLOCKS)}")
    options = {key: parameters.pop(key) for key in EXPORT_OPTIONS if key in parameters}
    text, manifest = generate(block, _block_params(block, parameters), **options)
    directory = Path(directory)
    module = manifest["module"]
    (directory / f"{module}.v").write_text(text)
    (directory / f"{module}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    write_models(directory, [m["primitive"] for m in manifest.get("simulation_models", [])])
    core = directory / (data["vlnv"].split(":")[2] + ".core")
    core.write_text(core_file(manifest, f"{module}.v", vlnv=data["vlnv"]))
    return core


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m qdp.build_scripts.fusesoc_generator",
        description="qdp's FuseSoC generator: INPUT.yml (FuseSoC runs it), or --library "
                    "DIR to write the generator core")
    parser.add_argument("input", nargs="?", type=Path, help="FuseSoC's generator input")
    parser.add_argument("--library", type=Path, metavar="DIR",
                        help=f"write {GENERATOR_CORE} and {GENERATOR_SCRIPT} into DIR")
    parser.add_argument("--interpreter", default="python3",
                        help="with --library: the Python the generator runs (default "
                             "python3 on PATH)")
    args = parser.parse_args(argv)
    try:
        if args.library is not None:
            print("\n".join(map(str, write_generator_core(args.library,
                                                         interpreter=args.interpreter))))
        elif args.input is not None:
            print(run(args.input))
        else:
            parser.error("give INPUT.yml or --library DIR")
    except (ValueError, TypeError, OSError) as error:
        print(f"qdp: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
