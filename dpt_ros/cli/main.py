"""``dpt-ros``: command-line tools of dpt_ros (no ROS needed).

Subcommands live in their own modules, listed with their one line of help in
:data:`SUBCOMMANDS`. A subcommand module defines two functions::

    def add_parser(subparsers, name: str, help: str) -> argparse.ArgumentParser: ...
    def run(args: argparse.Namespace) -> int: ...

``add_parser`` adds the subcommand's parser (``subparsers.add_parser(name, help=help,
...)``) with its arguments and returns it; ``run`` does the work and returns the exit
status. Adding a subcommand is one line in :data:`SUBCOMMANDS` plus its module. Only the
module of the subcommand that the command line names is imported (ROS 2's ``ros2``
command loads its verbs the same way): ``dpt-ros --help`` lists the subcommands from
the table alone and stays fast, a subcommand's module imports torch, OpenCV or rclpy at
its top like any library module, and one subcommand's missing optional dependency
cannot break the others.

Errors: ``run`` raises ``ValueError`` (bad arguments or inputs), ``CheckpointError``
(weights) or ``OSError`` (files); :func:`main` turns them into one line on stderr,
``dpt-ros: error: <message>``, and exit status 2. Anything else is a bug and keeps its
traceback. Ctrl-C, SIGTERM and SIGHUP stop a run the same way (its outputs are closed
properly) with exit status 128 + the signal number: 130, 143, 129; from the first
thing :func:`main` does, so a stop while the subcommand's module loads ends the same
way, with one line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import NamedTuple

from dpt_ros import __version__
from dpt_ros.cli.stop_signals import (
    exit_status,
    handle_for_the_process,
    ignore_stop_signals,
    stop_of,
    stop_signals_raise,
)
from dpt_ros.models.errors import CheckpointError, RandomWeightsWarning
from dpt_ros.text import one_line

PROG = "dpt-ros"


class Subcommand(NamedTuple):
    """One subcommand: its name, the module that implements it (the module docstring
    says its API) and the one line of help ``dpt-ros --help`` shows for it."""

    name: str
    module: str
    help: str


#: Every subcommand, in the order ``dpt-ros --help`` lists them.
SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "predict", "dpt_ros.cli.predict", "run a model on an image or a directory of images"
    ),
    Subcommand(
        "bag",
        "dpt_ros.cli.bag.run",
        "run depth/segmentation over a bag, write a new bag with the outputs",
    ),
    Subcommand(
        "play",
        "dpt_ros.cli.bag.play",
        "publish a bag's camera topics (and /clock) at the recorded rate",
    ),
    Subcommand(
        "demo",
        "dpt_ros.cli.demo.run",
        "run a synthetic camera through dpt_node and write pictures of the outputs",
    ),
    Subcommand("bench", "dpt_ros.cli.bench", "benchmark the model and the node pipeline"),
    Subcommand(
        "export",
        "dpt_ros.cli.export",
        "export a model to ONNX or a TensorRT engine (fixed input size)",
    ),
    Subcommand(
        "doctor", "dpt_ros.cli.doctor", "check a configuration against what dpt_node publishes"
    ),
)

#: Exit status for errors reported on one line (argparse uses the same for usage errors).
EXIT_ERROR = 2


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``dpt-ros`` parser for the command line ``argv``: every subcommand of
    :data:`SUBCOMMANDS` is listed with its help, and the one ``argv`` names gets its
    arguments (its module is imported); ``argv=None``: every subcommand gets its
    arguments (every module is imported)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Monocular depth and semantic segmentation tools (DPT, Depth Anything "
        "V2, Depth Anything 3). Run 'dpt-ros COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print informational log messages (stderr)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = None if argv is None else _named_subcommand(argv)
    for command in SUBCOMMANDS:
        if argv is None or command.name == chosen:
            module = importlib.import_module(command.module)
            sub = module.add_parser(subparsers, command.name, command.help)
            sub.set_defaults(_run=module.run)
        else:  # listed for --help and for the choices of a usage error, never run
            subparsers.add_parser(command.name, help=command.help)
    return parser


def _named_subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand the command line names: its first argument that is not an option
    (the top-level options take no values), or None."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _one_line(exc: BaseException) -> str:
    """The error as one line: whitespace runs as one space, other control characters
    (ESC sequences from a hostile bag or file name) escaped."""
    text = one_line(" ".join(str(exc).split()))
    return text or type(exc).__name__


class _LogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{PROG}: {record.levelname.lower()}: {record.getMessage()}"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``dpt-ros`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    received: list[int] = []
    with stop_signals_raise(received):  # first: a stop while the modules load is a stop
        try:
            return _main(argv)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (stop_signals)
            return _interrupted(exc)
        except Exception:
            if not received:
                raise
            # The stop landed in an import, which failed its own way (numpy: ImportError).
            return _interrupted(stop_of(received[0]))


def _interrupted(exc: KeyboardInterrupt) -> int:
    print(f"{PROG}: interrupted" + (f" ({exc})" if str(exc) else ""), file=sys.stderr)
    return exit_status(exc)


def _main(argv: Sequence[str] | None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    # Log records of dpt_ros go to this call's stderr, and only during this call.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter())
    package_logger = logging.getLogger("dpt_ros")
    old_level = package_logger.level
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        with warnings.catch_warnings():
            # The random-weights warning is logged too, and the log is printed: once.
            warnings.simplefilter("ignore", RandomWeightsWarning)
            return int(args._run(args))
    except (ValueError, CheckpointError, OSError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(old_level)


def entry() -> None:
    """The ``dpt-ros`` program: :func:`main`, then the exit. A stop signal before
    :func:`main` handles them (while torch loads) ends the program at once with its exit
    status; after :func:`main` has returned (Ctrl-C mashed while the interpreter shuts
    down) it changes nothing: the run's exit status stands, and no traceback from an
    ``atexit`` function follows it."""
    handle_for_the_process()
    try:
        code = main()
    except KeyboardInterrupt as exc:  # before main() handled the signals itself
        print(f"{PROG}: interrupted" + (f" ({exc})" if str(exc) else ""), file=sys.stderr)
        code = exit_status(exc)
    ignore_stop_signals()
    sys.exit(code)


if __name__ == "__main__":  # python -m dpt_ros.cli.main
    entry()
