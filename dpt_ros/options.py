"""Options declared once: each field of an options dataclass carries its default, valid
range or choices, unit and help, and the names it has for the node (a parameter) and
for the command line (a flag). The node's parameter table (:mod:`dpt_ros.node.params`),
the bag tool's flags and the Python API's checks are all made from these fields, and
:meth:`Options.problems` is the one range-and-choice check. No dependencies beyond the
standard library (the command line's parser imports it).

Example::

    @dataclass(frozen=True)
    class CloudOptions(Options):
        stride: int = option(0, "Keep every n-th pixel.", range=(0, 64),
                             param="cloud.stride", flag="--cloud-stride")
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

#: What a problem calls a field: its ``param`` (the node), its ``flag`` (the command
#: line) or its Python ``field`` name (the API).
Naming = Literal["param", "flag", "field"]


@dataclass(frozen=True)
class OptionSpec:
    """What an options field is, apart from its default (see :func:`option`)."""

    help: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    unit: str = ""
    param: str = ""
    flag: str = ""
    summary: str = ""
    metavar: str | None = None
    example: str = ""


_KEY = "dpt_ros.option"


def option(
    default: Any,
    help: str,
    *,
    range: tuple[float, float] | None = None,
    choices: tuple[str, ...] | None = None,
    unit: str = "",
    param: str = "",
    flag: str = "",
    summary: str = "",
    metavar: str | None = None,
    example: str = "",
) -> Any:
    """A dataclass field with its declaration.

    Args:
        default: the default value (the node's parameter default, the flag's default).
        help: what the option does, in full (the parameter's description, the flag's
            help where no ``summary`` is given).
        range: (lowest, highest), inclusive, of a number.
        choices: the valid values of a text.
        unit: the unit of a number (``m``, ``s``), or ``""``.
        param: the node parameter that sets it (``""`` = none).
        flag: the command-line flag that sets it (``""`` = none); a bool whose default
            is True takes a ``--no-...`` flag that turns it off.
        summary: a short form of ``help`` (a table cell, a flag's help).
        metavar: the flag's argument name in ``--help``.
        example: a list parameter's example value (the generated params file).
    """
    spec = OptionSpec(
        help,
        None if range is None else (range[0], range[1]),
        choices,
        unit,
        param,
        flag,
        summary,
        metavar,
        example,
    )
    return dataclasses.field(default=default, metadata={_KEY: spec})


def spec_of(field: dataclasses.Field) -> OptionSpec | None:
    """The declaration of a field made with :func:`option` (None otherwise)."""
    return field.metadata.get(_KEY)


def declared(cls: type) -> dict[str, tuple[dataclasses.Field, OptionSpec]]:
    """{field name: (field, declaration)} of an options class, in field order."""
    return {f.name: (f, spec) for f in dataclasses.fields(cls) if (spec := spec_of(f)) is not None}


class _Declared:
    """A class attribute read from the fields' declarations: ``RANGES`` ({field:
    (lowest, highest)}) or ``CHOICES`` ({field: valid values})."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __get__(self, obj: Any, cls: type) -> dict[str, Any]:
        return {
            name: getattr(spec, self.what)
            for name, (_, spec) in declared(cls).items()
            if getattr(spec, self.what) is not None
        }


def value_problem(
    label: str,
    value: Any,
    choices: tuple[str, ...] | None = None,
    bounds: tuple[float, float] | None = None,
) -> str | None:
    """The one choice-and-range rule: why ``value`` (called ``label``) is none of
    ``choices`` or outside ``bounds`` (inclusive; NaN is outside), or None."""
    if choices is not None and value not in choices:
        return f"{label}={value!r} is not one of {', '.join(choices)}"
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        return f"{label}={value} is outside {bounds[0]}..{bounds[1]}"
    return None


class Options:
    """Base of the options dataclasses: the one check of declared ranges and choices.

    Subclasses are frozen dataclasses whose fields come from :func:`option`;
    :attr:`NAMING` says what their problems call a field by default.
    """

    NAMING: ClassVar[Naming] = "param"
    #: {field: (lowest, highest)} of the numbers, from their declarations.
    RANGES: ClassVar[Any] = _Declared("range")
    #: {field: valid values} of the texts, from their declarations.
    CHOICES: ClassVar[Any] = _Declared("choices")

    def label(self, name: str, naming: Naming | None = None) -> str:
        """What a problem calls field ``name`` (its parameter, flag or field name)."""
        spec = spec_of(self.__dataclass_fields__[name])  # type: ignore[attr-defined]
        how = naming or self.NAMING
        if spec is not None and how == "param" and spec.param:
            return spec.param
        if spec is not None and how == "flag" and spec.flag:
            return spec.flag
        return name

    def field_problems(self, naming: Naming | None = None) -> list[str]:
        """Each field outside its range (NaN too) or choices, named by ``naming``."""
        found = []
        for name, (field, spec) in declared(type(self)).items():
            value = getattr(self, name)
            if value is None and field.default is None:
                continue  # unset, where unset is the default: the caller decides
            if spec.choices is not None and value not in spec.choices:
                found.append(self.choice_problem(self.label(name, naming), value, spec.choices))
            elif problem := value_problem(self.label(name, naming), value, bounds=spec.range):
                found.append(problem)
        return found

    def choice_problem(self, label: str, value: Any, choices: tuple[str, ...]) -> str:
        """The problem of a text that is none of its choices."""
        return value_problem(label, value, choices) or ""

    def combined_problems(self, naming: Naming | None = None) -> list[str]:
        """Problems of combinations of fields (subclasses add theirs)."""
        return []

    def problems(self, naming: Naming | None = None) -> list[str]:
        """Every problem with these options (empty = valid), each field named as the
        caller's user set it: ``param`` (the node), ``flag`` (the command line) or
        ``field`` (Python); the class's :attr:`NAMING` by default."""
        return self.field_problems(naming) + self.combined_problems(naming)


def numbers(text: str) -> tuple[float, ...]:
    """argparse type of a list of numbers: ``X,Y,Z`` -> (X, Y, Z)."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, such as 0,-1,0, got {text!r}"
        ) from None


def _type(default: Any) -> Any:
    if isinstance(default, tuple):
        return numbers
    return float if isinstance(default, float) else int if isinstance(default, int) else str


def flag_help(spec: OptionSpec, default: Any, text: str | None = None) -> str:
    """The ``--help`` text of a declared flag: a command's own ``text`` or the summary
    (or help), then unit and default (none shown for a default of None: the text says
    what happens then), ``%`` escaped for argparse."""
    text = (text or spec.summary or spec.help).rstrip(".")
    if isinstance(default, bool) and default:
        return f"turns off: {text}".replace("%", "%%")
    if isinstance(default, bool) or default is None or default == ():
        return text.replace("%", "%%")
    unit = f" {spec.unit}" if spec.unit else ""
    shown = default if default != "" else "''"
    bounds = f"; {spec.range[0]}..{spec.range[1]}" if spec.range is not None else ""
    return f"{text} (default {shown}{unit}{bounds})".replace("%", "%%")


def add_flags(
    parser: argparse._ActionsContainer,
    cls: type,
    names: Iterable[str] | None = None,
    helps: Mapping[str, str] | None = None,
) -> None:
    """Adds the flags of ``cls``'s declared fields (those of ``names``, in that order;
    every field with a flag by default) to ``parser``.

    A number's flag takes that type; a text with choices takes one of them; a bool whose
    default is False is a switch that turns it on, one whose default is True a
    ``--no-...`` switch that turns it off. Ranges are checked by :func:`from_flags`
    (every problem at once), not by argparse. ``helps``: {field: a command's own words
    for it, in place of its summary}; type, choices and default stay the declaration's.
    """
    fields = declared(cls)
    helps = helps or {}
    for name in names if names is not None else [n for n, (_, s) in fields.items() if s.flag]:
        field, spec = fields[name]
        default = field.default
        text = flag_help(spec, default, helps.get(name))
        if isinstance(default, bool):
            parser.add_argument(spec.flag, action="store_true", help=text)
            continue
        more: dict[str, Any] = {}
        if spec.metavar:
            more["metavar"] = spec.metavar
        if spec.choices is not None:
            more["choices"] = spec.choices
        parser.add_argument(spec.flag, type=_type(default), default=default, help=text, **more)


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def flag_values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """{field: value} of ``cls``'s fields whose flags ``args`` holds."""
    values = {}
    for name, (field, spec) in declared(cls).items():
        if spec.flag and hasattr(args, _dest(spec.flag)):
            value = getattr(args, _dest(spec.flag))
            # A --no-... switch (default True) turns the option off.
            values[name] = (not value) if field.default is True else value
    return values


def from_flags(cls: type, args: argparse.Namespace, **more: Any) -> Any:
    """``cls`` from the flags of :func:`add_flags` and ``more`` fields; ValueError naming
    every flag with a problem."""
    options = cls(**{**flag_values(cls, args), **more})
    problems = options.problems("flag")
    if problems:
        raise ValueError("; ".join(problems))
    return options


def defaults(cls: type) -> Mapping[str, Any]:
    """{field: default} of ``cls``'s declared fields."""
    return {name: field.default for name, (field, _) in declared(cls).items()}
