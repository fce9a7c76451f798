"""`streamact` command-line entry point. Each subcommand lives in its own module with add_parser()/main(args).

Errors are reported here, once, in one style for every subcommand: a single line ``error: <what> (<what to do>)``
on stderr and a documented exit code (`EXIT_CODES`); the traceback only with ``--debug``. Subcommands raise
`streamact.errors.UserError` for problems the user can fix and let everything else propagate.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import traceback
import warnings

from streamact import __version__
from streamact.errors import UserError

# Optional packages -> the extra that installs them (the core install runs exported models with numpy and PyAV).
_EXTRAS = {"torch": "train", "torchvision": "train", "timm": "train", "safetensors": "train",
           "openvino": "runtime", "onnxruntime": "runtime", "onnx": "runtime", "nncf": "export"}

# Subcommand name -> module in streamact.cli. Modules import heavy dependencies lazily inside main().
COMMANDS = {
    "data": "data",
    "train": "train",
    "eval": "evaluate",
    "models": "models",
    "recognize": "recognize",
    "detect": "detect",
    "export": "export",
    "bench": "bench",
    "demo": "demo",
    "serve": "serve",
}

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = {
    EXIT_OK: "ok",
    EXIT_FAILURE: "failure during the run: a source broke mid-stream, a parity check failed, `data check` found\n"
                  "       unreadable videos, or an internal error",
    EXIT_USAGE: "usage or user error: a bad option, or a missing or unusable file, model or dataset",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); the outputs written so far are finalised",
}
EPILOG = ("exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
          + "\n\nErrors print one line saying what to do; add --debug (anywhere) to see the traceback as well.")

# Exceptions other than UserError that the CLI reports as user errors (exit 2): a path that does not exist or cannot
# be read, a value streamact refused (an option, a file's contents: the library validates with ValueError), and a
# missing optional dependency (its message names the package to install).
_USER_ERRORS = (UserError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, ValueError,
                ImportError)


class _ShowDefaults(argparse.HelpFormatter):
    """Mixed into every command's help formatter: each option shows its default unless its text already says it.

    On/off flags (default off) and options without a default (None) show none.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def _use_formatter(parser: argparse.ArgumentParser) -> None:
    if not issubclass(parser.formatter_class, _ShowDefaults):  # keep the command's own (e.g. raw descriptions)
        parser.formatter_class = type("HelpFormatter", (_ShowDefaults, parser.formatter_class), {})
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _use_formatter(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamact",
        description="Real-time video action recognition and online action detection on CPUs.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"streamact {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"streamact.cli.{module}")
        p = mod.add_parser(sub, name)
        p.set_defaults(_main=mod.main)
    _use_formatter(parser)
    return parser


def _flags(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """Option strings of the on/off flags (store_true) of `parser` and of the subcommand named in `argv`."""
    found = set()
    for action in parser._actions:  # argparse keeps no public list of a parser's options
        if isinstance(action, argparse._StoreTrueAction):
            found.update(s for s in action.option_strings if s.startswith("--"))
        elif isinstance(action, argparse._SubParsersAction):
            command = next((a for a in argv if a in action.choices), None)
            if command is not None:
                found |= _flags(action.choices[command], argv[argv.index(command) + 1:])
    return found


def _expand_flags(argv: list[str], flags: set[str]) -> list[str]:
    """Accept ``--flag=true|false`` (as config overrides are written) for every on/off flag.

    Raises:
        UserError: a flag given a value other than true/false (yes/no, 1/0).
    """
    expanded = []
    for token in argv:
        name, eq, value = token.partition("=")
        if not eq or name not in flags:
            expanded.append(token)
        elif value.lower() in ("true", "yes", "1"):
            expanded.append(name)
        elif value.lower() not in ("false", "no", "0"):
            raise UserError(f"{name} is on or off: write {name}, {name}=true or {name}=false, not {token}")
    return expanded


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a warning as one line ``warning: <message>``, the style of the CLI's errors (not Python's two lines)."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, so it can be added to any command as typed
    argv = [a for a in argv if a != "--debug"]
    with warnings.catch_warnings():  # restores Python's own warning display when the command returns
        if not debug:  # with --debug, Python's format shows where each warning came from
            warnings.showwarning = _show_warning
        return _run(argv, debug)


def _run(argv: list[str], debug: bool) -> int:
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(_expand_flags(argv, _flags(parser, argv)))
        # Only commands that take free-form config overrides (`train`) accept unknown options.
        if extra and not getattr(args, "accepts_overrides", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = extra
        args.debug = debug
        return int(args._main(args) or 0)
    except ModuleNotFoundError as e:
        package = (e.name or "").split(".")[0]
        if package not in _EXTRAS:
            raise
        print(f"error: `streamact {args.command}` needs {package}, which is not installed here; install it with "
              f"pip install 'streamact[{_EXTRAS[package]}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _USER_ERRORS as exc:
        return _report(exc, EXIT_USAGE, debug)
    except Exception as exc:  # noqa: BLE001 -- the one place where any failure becomes one line and an exit code
        return _report(exc, EXIT_FAILURE, debug, hint=True)


def _report(exc: BaseException, code: int, debug: bool, *, hint: bool = False) -> int:
    if debug:
        traceback.print_exc()
    message = str(exc) or type(exc).__name__
    if hint and not debug:  # not a user mistake: name the exception type, and where to look next
        message = f"{type(exc).__name__}: {message} (rerun with --debug to see the traceback)"
    print(f"error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
