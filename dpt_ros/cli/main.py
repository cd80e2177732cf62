"""``dpt-ros``: command-line tools of dpt_ros (no ROS needed).

Subcommands live in their own modules, listed in :data:`SUBCOMMANDS`. A subcommand
module defines two functions::

    def add_parser(subparsers, name: str) -> argparse.ArgumentParser: ...
    def run(args: argparse.Namespace) -> int: ...

``add_parser`` adds the subcommand's parser (``subparsers.add_parser(name, ...)``) and
returns it; ``run`` does the work and returns the exit status. Adding a subcommand is
one line in :data:`SUBCOMMANDS` plus its module. Modules are imported whenever the
command line is parsed, so they must import heavy or optional dependencies (torch,
rosbags, ...) inside ``run``: ``dpt-ros --help`` stays fast and one subcommand's
missing optional dependency cannot break the others.

Errors: ``run`` raises ``ValueError`` (bad arguments or inputs), ``CheckpointError``
(weights) or ``OSError`` (files); :func:`main` turns them into one line on stderr,
``dpt-ros: error: <message>``, and exit status 2. Anything else is a bug and keeps its
traceback. Ctrl-C, SIGTERM and SIGHUP stop a run the same way (its outputs are closed
properly) with exit status 128 + the signal number: 130, 143, 129; from the first
thing :func:`main` does, so a stop while the subcommands' modules load ends the same
way, with one line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

from dpt_ros import __version__
from dpt_ros.cli.stop_signals import exit_status, stop_of, stop_signals_raise

PROG = "dpt-ros"

#: (name, module) of every subcommand; see the module docstring for the module's API.
SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("predict", "dpt_ros.cli.predict"),
    ("bag", "dpt_ros.cli.bag.run"),
    ("play", "dpt_ros.cli.bag.play"),
    ("demo", "dpt_ros.cli.demo.run"),
    ("bench", "dpt_ros.cli.bench"),
    ("export", "dpt_ros.cli.export"),
    ("doctor", "dpt_ros.cli.doctor"),
)

#: Exit status for errors reported on one line (argparse uses the same for usage errors).
EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """The ``dpt-ros`` parser with every subcommand of :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="DPT (Dense Prediction Transformer) monocular depth and semantic "
        "segmentation tools. Run 'dpt-ros COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print informational log messages (stderr)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS:
        module = importlib.import_module(module_name)
        sub = module.add_parser(subparsers, name)
        sub.set_defaults(_run=module.run)
    return parser


def _one_line(exc: BaseException) -> str:
    """The error as one line: whitespace runs as one space, other control characters
    (ESC sequences from a hostile bag or file name) escaped."""
    from dpt_ros.text import one_line  # only the standard library

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
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    # Imported after parsing: importing dpt_ros.models loads torch (seconds).
    from dpt_ros.models.errors import CheckpointError, RandomWeightsWarning

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
    # Only the standard library: dpt-ros --help stays fast.
    from dpt_ros.cli.stop_signals import exit_status, handle_for_the_process, ignore_stop_signals

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
