"""Experiment configurations: one frozen, validated dataclass per experiment.

A config class is the single source of an experiment's settings, their
defaults and their checks.  Each field is declared with :func:`option`, which
records the help text and, where it differs from ``--field-name``, the command
line flag.  From the class alone:

- :func:`add_arguments` builds the command-line options (defaults shown in ``--help``);
- :meth:`ExperimentConfig.from_mapping` builds a config from a TOML table or any
  mapping, refusing unknown keys and values of the wrong type, naming the key;
- :meth:`ExperimentConfig.to_mapping` / :meth:`ExperimentConfig.to_toml` give
  back exactly what :meth:`from_mapping` reads (a round trip), and this is what
  ``summary.json`` records.

Field-level checks run when the config is made (``check``); checks that need
the data (the stability limit, the batch size against P) run at the start of
the experiment, before any work.
"""
from __future__ import annotations

import argparse
import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import tomli_w

from sgdnoise.errors import UsageError

C = TypeVar("C", bound="ExperimentConfig")


def option(default: Any, help: str, *, flag: str | None = None, choices: tuple[Any, ...] | None = None,
           cli: bool = True) -> Any:
    """A config field with its command-line help (``%(default)s`` is filled in by argparse).

    Parameters
    ----------
    default : Any
        The default (immutable: numbers, strings, tuples, None).
    help : str
        One line for ``--help``.
    flag : str, optional
        The command-line flag when it is not ``--`` + the field name with ``-`` for ``_``.
    choices : tuple, optional
        Allowed values, listed in ``--help``.
    cli : bool
        False for fields set only from Python or a config file.
    """
    return dataclasses.field(default=default, metadata={"help": help, "flag": flag, "choices": choices,
                                                        "cli": cli})


def flag_of(field: dataclasses.Field) -> str:
    """The command-line flag of a config field."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """(inner type, optional?) of ``X | None``."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        return f"a list of {typing.get_args(tp)[0].__name__}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (int, float, str, bool, tuple[X, ...], optional), or UsageError naming ``name``."""
    inner, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise UsageError(f"{name} must be {_type_name(inner)}; got nothing", name=name)
    if typing.get_origin(inner) is tuple:
        item = typing.get_args(inner)[0]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{name} must be {_type_name(inner)}; got {value!r}", name=name)
        return tuple(_coerce(name, v, item) for v in value)
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str)}[inner]
    if not ok(value):
        raise UsageError(f"{name} must be {_type_name(inner)}; got {value!r}", name=name)
    return inner(value)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Base of every experiment's config: checks on creation, mapping and TOML round trips.

    Subclasses are frozen dataclasses whose fields are declared with
    :func:`option`; they set ``experiment`` (the command name) and override
    :meth:`check` with the field-level checks.
    """

    experiment: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, _coerce(field.name, getattr(self, field.name), hints[field.name]))
        self.check()

    def check(self) -> None:
        """Raise :class:`UsageError` naming the field for any invalid setting (subclasses)."""

    @classmethod
    def from_mapping(cls: type[C], mapping: Mapping[str, Any]) -> C:
        """The config of ``mapping`` (e.g. a TOML table); unknown keys are refused, naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(mapping) - names)
        if unknown:
            raise UsageError(f"unknown key {unknown[0]!r} for experiment {cls.experiment!r}; "
                             f"allowed keys: {', '.join(sorted(names))}", name=unknown[0])
        return cls(**mapping)

    def to_mapping(self) -> dict[str, Any]:
        """Every field with its value (tuples as lists): what :meth:`from_mapping` reads back."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    def replace(self: C, **changes: Any) -> C:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)

    def to_toml(self) -> str:
        """The config as a TOML document (``experiment = ...`` then every set field; None is left out)."""
        body = {k: v for k, v in self.to_mapping().items() if v is not None}
        return tomli_w.dumps({"experiment": self.experiment, **body})


def read_toml(path: str | Path) -> dict[str, Any]:
    """The table of a TOML file, or a one-line :class:`UsageError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"CONFIG must be an existing TOML file; got {str(path)!r}", name="CONFIG")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"CONFIG {str(path)!r} is not valid TOML: {exc}", name="CONFIG") from None


def add_arguments(parser: argparse.ArgumentParser, config_class: type[ExperimentConfig],
                  defaults: ExperimentConfig | None = None, group: str | None = None) -> None:
    """Add one option per command-line field of ``config_class`` to ``parser``.

    Defaults come from ``defaults`` (or the class) and show in ``--help``.
    Booleans become ``--flag/--no-flag``; tuples are comma-separated lists.
    """
    hints = typing.get_type_hints(config_class)
    target = parser.add_argument_group(group) if group else parser
    for field in dataclasses.fields(config_class):
        if not field.metadata.get("cli", True):
            continue
        # the class defaults need not make a complete config (e.g. one of two options required)
        default = getattr(defaults, field.name) if defaults is not None else field.default
        inner, _ = _unwrap_optional(hints[field.name])
        help_text = field.metadata.get("help", "")
        choices = field.metadata.get("choices")
        if choices:
            help_text += f" ({', '.join(map(str, choices))})"
        # a None default is either explained in the help ("None: ...", "default 100; ...") or means "not given"
        explained = "None:" in help_text or "(default " in help_text or "(default)" in help_text
        shown = " (default: %(default)s)" if default is not None else "" if explained else " (default: not given)"
        kwargs: dict[str, Any] = {"dest": field.name, "default": default, "help": help_text + shown}
        if inner is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(inner) is tuple:
            kwargs["type"] = str
            kwargs["default"] = ",".join(map(str, default))
            kwargs["metavar"] = "A,B,..."
        else:
            kwargs["type"] = inner
        target.add_argument(flag_of(field), **kwargs)


def config_from_args(config_class: type[C], args: argparse.Namespace) -> C:
    """The config of parsed arguments (fields not on the command line keep their defaults)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class) if hasattr(args, f.name)}
    return config_class(**values)


def flag_for(config_class: type[ExperimentConfig], name: str | None) -> str | None:
    """The command-line flag of field ``name`` of ``config_class`` (None if it has none)."""
    for field in dataclasses.fields(config_class):
        if field.name == name and field.metadata.get("cli", True):
            return flag_of(field)
    return None


def redefault(config_class: type[ExperimentConfig], name: str, default: Any) -> Any:
    """Field ``name`` of ``config_class`` with another default (same help and flag): for subclasses."""
    metadata = config_class.__dataclass_fields__[name].metadata
    return dataclasses.field(default=default, metadata=metadata)
