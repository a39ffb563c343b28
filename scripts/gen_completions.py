"""Generate the shell completion scripts of ``ugosa`` (bash, zsh, fish) from its Typer app.

The scripts are static: completing a word never starts Python. Values complete where they are a
fixed set (strategies, formats, devices, stems, ...), model options offer the registry names, the
models imported into the cache, and files.

Regenerate everything (completions and the man page) with::

    python scripts/gen_completions.py && python scripts/gen_man.py

``--check`` compares instead of writing and exits 1 when a file is stale.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import typer.main
from typer._click.core import Context, Parameter

from ugosa_cli import hub
from ugosa_cli.adaptation import OPTIMIZERS
from ugosa_cli.audio import BIT_DEPTHS, CLIP_MODES, FORMATS
from ugosa_cli.cli import app
from ugosa_cli.demo.synth import REST_LAYOUTS
from ugosa_cli.labels import LABEL_FORMATS
from ugosa_cli.metrics import FRAME_RULES
from ugosa_cli.planning import PROTOCOLS
from ugosa_cli.separation import DEVICES
from ugosa_cli.sources import DEFAULT_SOURCES
from ugosa_cli.strategy import STRATEGY_NAMES

ROOT = Path(__file__).resolve().parent.parent
PROG = "ugosa"
REGENERATE = "python scripts/gen_completions.py && python scripts/gen_man.py"
HEADER = f"Generated from the ugosa command line by scripts/gen_completions.py; do not edit. Regenerate: {REGENERATE}"

# What a value completes to. A tuple of words, or one of these kinds.
FILE, DIR, MODEL, MODEL_NAME, NOTHING = "file", "dir", "model", "model-name", "nothing"

VALUES_BY_OPTION: dict[str, tuple[str, ...] | str] = {
    "--strategy": STRATEGY_NAMES,
    "--strategies": STRATEGY_NAMES,
    "--frame-rule": FRAME_RULES,
    "--device": DEVICES,
    "--stems": DEFAULT_SOURCES,
    "--two-stems": DEFAULT_SOURCES,
    "--sources": DEFAULT_SOURCES,
    "--labels-format": LABEL_FORMATS,
    "--to": LABEL_FORMATS,
    "--protocol": PROTOCOLS,
    "--optimizer": OPTIMIZERS,
    "--clip-mode": CLIP_MODES,
    "--bits": tuple(map(str, BIT_DEPTHS)),
    "--format": FORMATS,
    "--rests": REST_LAYOUTS,
    "--model": MODEL,
    # free text that is not a file
    "--map": NOTHING,
    "--name": NOTHING,
    "--filename": NOTHING,
    "--duration": NOTHING,
    "--names": NOTHING,
}
# Where one command gives an option another meaning than VALUES_BY_OPTION.
VALUES_BY_COMMAND: dict[tuple[str, ...], dict[str, tuple[str, ...] | str]] = {
    ("labels", "from-stems"): {"--format": LABEL_FORMATS},
}
# Positional arguments that name models rather than files.
MODEL_ARGUMENTS = {("model", "download"), ("model", "path"), ("model", "remove")}


@dataclass(frozen=True)
class Param:
    """One option or argument as completion and the man page need it."""

    flags: tuple[str, ...]  # ("-m", "--model"); empty for an argument
    metavar: str  # "MODEL", "TRACKS"
    help: str
    takes_value: bool
    repeatable: bool  # an option given several times, or an argument taking several values
    required: bool
    values: tuple[str, ...] | str

    @property
    def long(self) -> str:
        return next((f for f in self.flags if f.startswith("--")), self.flags[0] if self.flags else "")

    @property
    def summary(self) -> str:
        return first_sentence(self.help)


@dataclass(frozen=True)
class Command:
    """A command or group of the tree, with its options, arguments and subcommands."""

    path: tuple[str, ...]  # () for the root
    help: str
    options: tuple[Param, ...]
    arguments: tuple[Param, ...]
    subcommands: tuple[Command, ...]

    @property
    def name(self) -> str:
        return " ".join((PROG,) + self.path)

    @property
    def summary(self) -> str:
        return first_sentence(self.help)

    def walk(self) -> typing.Iterator[Command]:
        yield self
        for sub in self.subcommands:
            yield from sub.walk()


def first_sentence(text: str) -> str:
    """The first sentence of a help text, on one line."""
    paragraph = " ".join(text.strip().split("\n\n", 1)[0].split())
    end = paragraph.find(". ")
    return paragraph[: end + 1] if end >= 0 else paragraph


def _scalar(annotation: object) -> object:
    """``list[int]`` -> ``int``; ``Optional[X]`` -> ``X``; anything else unchanged."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return _scalar(args[0]) if args else annotation


def _values(path: tuple[str, ...], param: Parameter, flags: tuple[str, ...]) -> tuple[str, ...] | str:
    long = next((f for f in flags if f.startswith("--")), "")
    by_command = VALUES_BY_COMMAND.get(path, {})
    if long in by_command:
        return by_command[long]
    if long in VALUES_BY_OPTION:
        return VALUES_BY_OPTION[long]
    if not flags and path in MODEL_ARGUMENTS:
        return MODEL_NAME
    kind = _scalar(param.type_descriptor.annotation)
    if kind in (int, float):
        return NOTHING
    return DIR if param.metavar == "DIR" else FILE


def _param(path: tuple[str, ...], param, ctx) -> Param:  # type: ignore[no-untyped-def]
    record = param.get_help_record(ctx)
    help_text = record[1] if record else ""
    if param.param_type_name == "argument":
        return Param(
            flags=(),
            metavar=(param.metavar or param.name).upper(),
            help=help_text,
            takes_value=True,
            repeatable=param.nargs == -1,
            required=param.required,
            values=_values(path, param, ()),
        )
    flags = tuple(sorted(param.opts + param.secondary_opts, key=lambda f: (f.startswith("--"), f)))
    takes_value = not param.is_flag
    return Param(
        flags=flags,
        metavar=(param.metavar or max(flags, key=len).lstrip("-").replace("-", "_").upper()) if takes_value else "",
        help=help_text,
        takes_value=takes_value,
        repeatable=bool(param.multiple),
        required=param.required,
        values=_values(path, param, flags) if takes_value else NOTHING,
    )


def _command(click_command, path: tuple[str, ...], parent_ctx=None) -> Command:  # type: ignore[no-untyped-def]
    ctx = Context(
        click_command, info_name=path[-1] if path else PROG, parent=parent_ctx, **click_command.context_settings
    )
    params = [p for p in click_command.params if not p.hidden]
    help_option = click_command.get_help_option(ctx)
    if help_option is not None:
        params.append(help_option)
    options = tuple(_param(path, p, ctx) for p in params if p.param_type_name == "option")
    arguments = tuple(_param(path, p, ctx) for p in params if p.param_type_name == "argument")
    children = getattr(click_command, "commands", {})
    subcommands = tuple(
        _command(child, path + (name,), ctx) for name, child in children.items() if not child.hidden
    )
    return Command(path, inspect.cleandoc(click_command.help or ""), options, arguments, subcommands)


def command_tree() -> Command:
    """The whole ``ugosa`` command tree, read from the Typer app."""
    return _command(typer.main.get_command(app), ())


def _ident(path: tuple[str, ...]) -> str:
    return "_" + "_".join((PROG,) + path).replace("-", "_")


def _value_sets(tree: Command) -> dict[str, tuple[str, ...]]:
    """Every fixed set of values, named after the first option that uses it."""
    sets: dict[str, tuple[str, ...]] = {}
    for command in tree.walk():
        for param in command.options:
            if isinstance(param.values, tuple) and param.values not in sets.values():
                sets[param.long.lstrip("-").replace("-", "_")] = param.values
    return sets


def _set_name(sets: dict[str, tuple[str, ...]], values: tuple[str, ...]) -> str:
    return next(name for name, words in sets.items() if words == values)


def _imported_glob() -> str:
    """Shell expression of the folder of imported models (hub.imported_path), Linux/macOS cache defaults."""
    return '${UGOSA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ugosa}/models/imported'


# --- bash ------------------------------------------------------------------------------------------------


def bash_script(tree: Command) -> str:
    sets = _value_sets(tree)
    registry = " ".join(hub.REGISTRY)
    lines = [f"# bash completion for {PROG}", f"# {HEADER}", ""]
    lines += [f'_ugosa_values_{name}="{" ".join(words)}"' for name, words in sets.items()]
    lines += [
        "",
        "_ugosa_models() {",
        f'    local dir="{_imported_glob()}" f names="{registry}"',
        '    for f in "$dir"/*.th; do [[ -e $f ]] && names+=" $(basename "$f" .th)"; done',
        '    printf "%s" "$names"',
        "}",
        "",
        "# Complete the words in $1 for the word under the cursor (which may hold ':' or follow '=').",
        "_ugosa_words() {",
        '    COMPREPLY=($(compgen -W "$1" -- "$cur"))',
        '    if [[ $cur == *:* ]]; then',
        '        local head="${cur%"${cur##*:}"}"',
        '        COMPREPLY=("${COMPREPLY[@]#"$head"}")',
        "    fi",
        "}",
        "",
        "_ugosa() {",
        '    local line="${COMP_LINE:0:COMP_POINT}" cur prev path="" word',
        "    local -a words",
        '    read -ra words <<< "$line"',
        '    if [[ $line == *[[:space:]] || ${#words[@]} -le 1 ]]; then',
        '        cur=""',
        "    else",
        '        cur="${words[-1]}"',
        "        unset 'words[-1]'",
        "    fi",
        '    prev="${words[-1]}"',
        '    if [[ $cur == --*=* ]]; then',
        '        prev="${cur%%=*}"',
        '        cur="${cur#*=}"',
        "    fi",
        '    for word in "${words[@]:1}"; do',
        '        case "$path" in',
    ]
    for command in tree.walk():
        if command.subcommands:
            names = "|".join(sub.path[-1] for sub in command.subcommands)
            prefix = " ".join(command.path)
            target = f'"{prefix} $word"' if prefix else '"$word"'
            lines.append(f'            "{prefix}") case "$word" in {names}) path={target} ;; esac ;;')
    lines += ["        esac", "    done", '    case "$path" in']
    for command in tree.walk():
        lines.append(f'        "{" ".join(command.path)}")')
        value_options = [p for p in command.options if p.takes_value]
        if value_options:
            lines.append('            case "$prev" in')
            for param in value_options:
                lines.append(f"                {'|'.join(param.flags)}) {_bash_values(param.values, sets)}; return ;;")
            lines.append("            esac")
        flags = " ".join(f for p in command.options for f in p.flags)
        lines.append(f'            if [[ $cur == -* ]]; then _ugosa_words "{flags}"; return; fi')
        if command.subcommands:
            lines.append(f'            _ugosa_words "{" ".join(s.path[-1] for s in command.subcommands)}"')
        elif command.arguments:
            lines.append(f"            {_bash_values(command.arguments[0].values, sets)}")
        lines.append("            ;;")
    lines += ["    esac", "}", "", f"complete -F _ugosa {PROG}", ""]
    return "\n".join(lines)


def _bash_values(values: tuple[str, ...] | str, sets: dict[str, tuple[str, ...]]) -> str:
    if isinstance(values, tuple):
        return f'_ugosa_words "$_ugosa_values_{_set_name(sets, values)}"'
    if values == FILE:
        return "compopt -o default; COMPREPLY=()"
    if values == DIR:
        return "compopt -o dirnames; COMPREPLY=()"
    if values == MODEL:
        return '_ugosa_words "$(_ugosa_models)"; [[ ${#COMPREPLY[@]} -gt 0 ]] || compopt -o default'
    if values == MODEL_NAME:
        return '_ugosa_words "$(_ugosa_models)"'
    return "COMPREPLY=()"


# --- zsh -------------------------------------------------------------------------------------------------


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh_describe(text: str) -> str:
    """Text for the [...] of an _arguments spec."""
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def zsh_script(tree: Command) -> str:
    sets = _value_sets(tree)
    lines = [
        f"#compdef {PROG}",
        f"# zsh completion for {PROG}. {HEADER}",
        "",
        "_ugosa_model_names() {",
        f'    local dir="{_imported_glob()}"',
        f"    local -a names=({' '.join(hub.REGISTRY)} $dir/*.th(N:t:r))",
        "    _describe -t models 'model' names",
        "}",
        "",
        "_ugosa_models() {",
        "    _alternative 'models:model name:_ugosa_model_names' 'files:model file:_files'",
        "}",
    ]
    for name, words in sets.items():
        lines += ["", f"_ugosa_values_{name}() {{", f"    compadd -- {' '.join(map(_zsh_quote, words))}", "}"]
    for command in reversed(list(tree.walk())):
        lines += ["", f"{_ident(command.path)}() {{"]
        specs = [_zsh_option(p, sets) for p in command.options]
        if command.subcommands:
            lines.append('    local curcontext="$curcontext" state line')
            lines.append("    typeset -A opt_args")
            specs += ["'1: :->command'", "'*:: :->argument'"]
            lines.append("    _arguments -C -s -S \\")
            lines += [f"        {spec} \\" for spec in specs[:-1]] + [f"        {specs[-1]}"]
            lines += ["    case $state in", "        command)", "            local -a commands=("]
            lines += [
                f"                {_zsh_quote(sub.path[-1] + ':' + sub.summary)}"
                for sub in command.subcommands
            ]
            lines += [
                "            )",
                f"            _describe -t commands {_zsh_quote(command.name + ' command')} commands",
                "            ;;",
                "        argument)",
                '            case $words[1] in',
            ]
            lines += [f"                {sub.path[-1]}) {_ident(sub.path)} ;;" for sub in command.subcommands]
            lines += ["            esac", "            ;;", "    esac"]
        else:
            specs += [_zsh_argument(index, p, sets) for index, p in enumerate(command.arguments, start=1)]
            lines.append("    _arguments -s -S \\")
            lines += [f"        {spec} \\" for spec in specs[:-1]] + [f"        {specs[-1]}"]
        lines.append("}")
    lines += ["", f'{_ident(())} "$@"', ""]
    return "\n".join(lines)


def _zsh_action(values: tuple[str, ...] | str, sets: dict[str, tuple[str, ...]]) -> str:
    if isinstance(values, tuple):
        return f"_ugosa_values_{_set_name(sets, values)}"
    return {FILE: "_files", DIR: "_directories", MODEL: "_ugosa_models", MODEL_NAME: "_ugosa_model_names", NOTHING: " "}[values]


def _zsh_option(param: Param, sets: dict[str, tuple[str, ...]]) -> str:
    description = f"[{_zsh_describe(param.summary)}]"
    value = f":{param.metavar.lower()}:{_zsh_action(param.values, sets)}" if param.takes_value else ""
    if param.long == "--help" or param.long == "--version":
        exclude = "(- *)"
    elif param.repeatable:
        exclude = "*"
    else:
        exclude = f"({' '.join(param.flags)})"
    if len(param.flags) == 1:
        return _zsh_quote(exclude + param.flags[0] + description + value)
    return _zsh_quote(exclude) + "{" + ",".join(param.flags) + "}" + _zsh_quote(description + value)


def _zsh_argument(index: int, param: Param, sets: dict[str, tuple[str, ...]]) -> str:
    position = "*" if param.repeatable else str(index)
    return _zsh_quote(f"{position}:{param.metavar.lower()}:{_zsh_action(param.values, sets)}")


# --- fish ------------------------------------------------------------------------------------------------


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_script(tree: Command) -> str:
    lines = [
        f"# fish completion for {PROG}",
        f"# {HEADER}",
        "",
        "# The command path typed so far, e.g. 'model list' ('' before any subcommand).",
        "function __ugosa_path",
        "    set -l path ''",
        "    for word in (commandline -opc)[2..-1]",
        '        switch "$path"',
    ]
    for command in tree.walk():
        if command.subcommands:
            names = " ".join(sub.path[-1] for sub in command.subcommands)
            prefix = " ".join(command.path)
            target = f'"{prefix} $word"' if prefix else "$word"
            lines += [f"            case {_fish_quote(prefix)}", f"                contains -- $word {names}; and set path {target}"]
    lines += [
        "        end",
        "    end",
        '    echo "$path"',
        "end",
        "",
        "function __ugosa_at",
        "    set -l path (__ugosa_path)",
        '    test "$path" = "$argv"',
        "end",
        "",
        "function __ugosa_models",
        f"    printf '%s\\n' {' '.join(hub.REGISTRY)}",
        "    set -l cache $UGOSA_CACHE_DIR",
        "    if test -z \"$cache\"",
        "        set -q XDG_CACHE_HOME; and set cache $XDG_CACHE_HOME/ugosa; or set cache $HOME/.cache/ugosa",
        "    end",
        "    for file in $cache/models/imported/*.th",
        "        basename $file .th",
        "    end",
        "end",
        "",
        f"complete -c {PROG} -f",
    ]
    for command in tree.walk():
        at = f"-n {_fish_quote('__ugosa_at ' + ' '.join(command.path)) if command.path else _fish_quote('__ugosa_at')}"
        lines += ["", f"# {command.name}"]
        for sub in command.subcommands:
            lines.append(f"complete -c {PROG} {at} -a {sub.path[-1]} -d {_fish_quote(sub.summary)}")
        for param in command.options:
            flags = " ".join(("-l " + f[2:]) if f.startswith("--") else ("-s " + f[1:]) for f in param.flags)
            value = _fish_values(param.values) if param.takes_value else ""
            lines.append(f"complete -c {PROG} {at} {flags}{value} -d {_fish_quote(param.summary)}")
        if command.arguments and not command.subcommands:
            lines.append(f"complete -c {PROG} {at}{_fish_values(command.arguments[0].values, option=False)}")
    lines.append("")
    return "\n".join(lines)


def _fish_values(values: tuple[str, ...] | str, *, option: bool = True) -> str:
    need = " -r" if option else ""
    if isinstance(values, tuple):
        return f"{need} -f -a {_fish_quote(' '.join(values))}"
    return {
        FILE: f"{need} -F",
        DIR: f"{need} -f -a '(__fish_complete_directories)'",
        MODEL: f"{need} -F -a '(__ugosa_models)'",
        MODEL_NAME: f"{need} -f -a '(__ugosa_models)'",
        NOTHING: f"{need} -f",
    }[values]


# --- files -----------------------------------------------------------------------------------------------

OUTPUTS: dict[str, Callable[[Command], str]] = {
    "completions/ugosa.bash": bash_script,
    "completions/_ugosa": zsh_script,
    "completions/ugosa.fish": fish_script,
}


def write_or_check(outputs: dict[str, str], check: bool) -> int:
    """Write each ``{relative path: text}`` under the repository, or with ``check`` report stale ones (exit code)."""
    stale = [name for name, text in outputs.items() if not (ROOT / name).is_file() or (ROOT / name).read_text() != text]
    if check:
        for name in stale:
            print(f"{name} is stale; regenerate: {REGENERATE}", file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        (ROOT / name).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / name).write_text(outputs[name])
        print(name)
    return 0


def generate() -> dict[str, str]:
    tree = command_tree()
    return {name: render(tree) for name, render in OUTPUTS.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file differs from a fresh generation")
    return write_or_check(generate(), parser.parse_args().check)


if __name__ == "__main__":
    sys.exit(main())
