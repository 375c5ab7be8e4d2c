"""The ``cfin`` command: a thin dispatcher over one module per subcommand.

Each module in ``cfin.commands`` defines ``add_arguments(parser)`` and ``run(args) -> int``.
A :class:`~cfin.errors.CFINError` becomes one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
COMMANDS = {
    "summary": ("cfin.commands.summary", "module tree with parameter counts per block"),
    "convert": ("cfin.commands.convert", "official state_dict -> cfin checkpoint"),
    "complexity": ("cfin.commands.complexity", "params / Multi-Adds under every convention, memory, latency"),
    "evaluate": ("cfin.commands.evaluate", "PSNR/SSIM on benchmark datasets"),
    "train": ("cfin.commands.train", "train a CFIN variant with a named recipe"),
    "bench": ("cfin.commands.bench", "fast vs faithful implementation, time and memory"),
    "audit": ("cfin.commands.audit", "where the paper and the released code part ways, measured"),
}


def _available():
    for name, (mod, help_) in COMMANDS.items():
        if importlib.util.find_spec(mod) is not None:
            yield name, mod, help_


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cfin", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, mod, help_ in _available():
        p = sub.add_parser(name, help=help_, description=help_)
        importlib.import_module(mod).add_arguments(p)
        p.set_defaults(_module=mod, _parser=p)
    return parser


def main(argv: list[str] | None = None) -> int:
    from cfin.errors import CFINError, end_progress_bars, out_of_memory, reader_gone

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from cfin.commands._common import check_not_empty

        check_not_empty(args._parser, args)
        return int(importlib.import_module(args._module).run(args) or 0)
    except CFINError as e:
        end_progress_bars()
        print(f"cfin {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        end_progress_bars()
        print(f"cfin {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return reader_gone()
    except (MemoryError, RuntimeError) as e:  # numpy's MemoryError; torch's allocation failures
        oom = out_of_memory(e)
        if oom is None:
            raise
        end_progress_bars()
        print(f"cfin {args.command}: error: {oom}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
