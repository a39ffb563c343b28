"""The documentation stays true: links resolve, every page is reachable, every command shown still parses.

Checks README.md, docs/*.md and BENCHMARKS.md without network and without running a command: relative links
and their ``#anchors`` (GitHub's heading slugs), that the README links every page in ``docs/``, and that each
``ugosa ...`` line in a fenced code block names real commands with options they know (parsed by the command's
own Click parser, values converted as a real run converts them). A line opts out with ``# not run: REASON``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from typer._click.core import Command, Context
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.exceptions import Exit
from typer.testing import CliRunner

from ugosa_cli.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS, ROOT / "BENCHMARKS.md"]
ROOT_COMMAND = typer.main.get_command(app)

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_OPT_OUT = re.compile(r"#\s*not run:\s*\S")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SHELL_WORDS = {"do", "then", "else", "time", "exec", "!", "{", "}"}
_SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")", ";;"}
_REDIRECTIONS = {">", ">>", "<", "<<", ">&", "<&", "&>"}


@dataclass(frozen=True)
class Line:
    page: Path
    number: int
    text: str

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.number}"


def _split(page: Path) -> tuple[list[Line], list[Line]]:
    """A page's prose lines and its fenced code lines (continuations joined), each with its line number."""
    prose: list[Line] = []
    code: list[Line] = []
    fenced = False
    pending: tuple[int, str] | None = None
    for number, text in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if _FENCE.match(text):
            fenced = not fenced
            continue
        if not fenced:
            prose.append(Line(page, number, text))
            continue
        start, joined = pending if pending else (number, "")
        joined += text
        if joined.endswith("\\"):
            pending = (start, joined[:-1] + " ")
            continue
        pending = None
        code.append(Line(page, start, joined))
    assert not fenced, f"{page.relative_to(ROOT)}: a code fence is never closed"
    return prose, code


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lower-cased, punctuation dropped, spaces as hyphens."""
    text = _LINK.sub(lambda m: m.group(1), heading)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page, with GitHub's -1, -2 ... suffixes for repeated headings."""
    seen: dict[str, int] = {}
    found = set()
    for line in _split(page)[0]:
        match = _HEADING.match(line.text)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> Iterator[tuple[Line, str]]:
    """(line, target) for every Markdown link in a page's prose, code spans left out."""
    for line in _split(page)[0]:
        for match in _LINK.finditer(_CODE_SPAN.sub("", line.text)):
            yield line, match.group(2)


def _is_external(target: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) is not None


def _resolve(page: Path, target: str) -> tuple[Path, str]:
    path, _, anchor = target.partition("#")
    return (page.parent / path).resolve() if path else page, anchor


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for line, target in links(page):
        if _is_external(target):
            continue
        path, anchor = _resolve(page, target)
        if not path.exists():
            broken.append(f"{line.where()}: {target}: no such file")
        elif not path.is_relative_to(ROOT):
            broken.append(f"{line.where()}: {target}: outside the source tree")
        elif anchor and (path.suffix != ".md" or anchor not in anchors(path)):
            broken.append(f"{line.where()}: {target}: no heading with anchor #{anchor} in {path.name}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_docs_page_is_linked_from_the_readme():
    assert DOCS, "docs/ holds no page"
    linked = {_resolve(README, target)[0] for _, target in links(README) if not _is_external(target)}
    assert [page.name for page in DOCS if page.resolve() not in linked] == []


def test_the_help_and_the_man_page_point_to_pages_that_exist():
    help_text = " ".join(CliRunner().invoke(app, ["--help"]).output.split())
    man_page = (ROOT / "man" / "ugosa.1").read_text(encoding="utf-8")
    assert "README.md" in help_text and "docs/" in help_text
    named = set(re.findall(r"docs/[\w-]+\.md", man_page))
    assert named and all((ROOT / name).is_file() for name in named), sorted(named)
    # every page for users is listed (the developers' page is not: it is no help to someone reading a man page)
    assert README.name in man_page
    assert [p.name for p in DOCS if f"docs/{p.name}" not in named and p.name != "development.md"] == []


def test_the_setup_lines_come_first_in_the_readme():
    # A fresh clone follows them before reading anything else: the title, then these two lines.
    prose, code = _split(README)
    first_heading = next(line.number for line in prose if line.text.startswith("## "))
    assert [line.text for line in code[:2]] == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install . && ugosa demo",
        ". .venv/bin/activate && pip install -e '.[test]' && python -m pytest -q",
    ]
    assert code[1].number < first_heading


def _words(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def command_words(text: str) -> Iterator[list[str]]:
    """The word lists of the ``ugosa`` commands in a shell line: split at pipes, ``&&``, ``;``; redirections,
    variable assignments and ``do``/``then`` dropped; a quoted ``'ugosa ...'`` argument (GNU parallel) included."""
    segment: list[str] = []
    words = [*_words(text), ";"]
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in _REDIRECTIONS:
            skip = True
        elif word in _SEPARATORS:
            while segment and (segment[0] in _SHELL_WORDS or _ASSIGNMENT.match(segment[0])):
                segment.pop(0)
            if segment and segment[0] == "ugosa":
                yield segment[1:]
            segment = []
        else:
            if word.startswith("ugosa ") and segment:
                yield from command_words(word)
            segment.append(word)


def commands(page: Path) -> Iterator[tuple[Line, list[str]]]:
    for line in _split(page)[1]:
        if _OPT_OUT.search(line.text):
            continue
        try:
            for words in command_words(line.text):
                yield line, words
        except ValueError as exc:  # unbalanced quotes
            raise AssertionError(f"{line.where()}: not a shell line ({exc}): {line.text}") from None


def _resolve_command(words: list[str]) -> tuple[list[str], Command, list[str]]:
    """(the command path, its command, the rest of the words): subcommand names are consumed while they match."""
    path: list[str] = []
    command: Command = ROOT_COMMAND
    rest = list(words)
    while rest and hasattr(command, "commands") and rest[0] in command.commands:
        path.append(rest[0])
        command = command.commands[rest[0]]
        rest.pop(0)
    return path, command, rest


def parse_error(words: list[str]) -> str | None:
    """Why ``ugosa WORDS`` would be refused before running (an unknown command or option, a missing or bad
    value), or None when it parses."""
    path, command, rest = _resolve_command(words)
    if hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        return f"{' '.join(['ugosa', *path])} has no command {rest[0]!r}"
    try:
        context: Context = command.make_context(" ".join(["ugosa", *path]), rest, resilient_parsing=False)
    except (Exit, NoArgsIsHelpError):  # --help, --version; or no arguments, which shows the help
        return None
    except UsageError as exc:
        return exc.format_message()
    context.close()
    return None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_shown_parses(page):
    refused = [f"{line.where()}: {error}\n    {line.text.strip()}"
               for line, words in commands(page) if (error := parse_error(words))]
    assert not refused, "commands the CLI refuses:\n" + "\n".join(refused)


def _shown_paths() -> set[tuple[str, ...]]:
    return {tuple(_resolve_command(words)[0]) for page in PAGES for _, words in commands(page)}


def test_every_command_shown_has_help(capsys):
    for path in sorted(_shown_paths()):
        # the command built once (ROOT_COMMAND) rather than per call as CliRunner does: 15 ms a call, not 120
        code = ROOT_COMMAND.main(args=[*path, "--help"], prog_name="ugosa", standalone_mode=False)
        output = capsys.readouterr().out
        assert code == 0 and output.startswith(f"Usage: ugosa {' '.join(path)}".rstrip()), output


def _leaf_paths(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        yield path
        return
    for name, sub in subcommands.items():
        yield from _leaf_paths(sub, (*path, name))


def test_every_command_has_an_example_in_the_docs():
    # A new command or subcommand needs at least one example line in README.md or docs/.
    shown = _shown_paths()
    assert [" ".join(path) for path in _leaf_paths(ROOT_COMMAND) if path not in shown] == []


@pytest.mark.parametrize(
    "line, expected",
    [
        ("ugosa separate a.wav | jq .", [["separate", "a.wav"]]),
        ("cat a.wav | ugosa separate - --json && ugosa model list", [["separate", "-", "--json"], ["model", "list"]]),
        ("UGOSA_OFFLINE=1 ugosa separate a.wav > out.txt  # a comment", [["separate", "a.wav"]]),
        ("for s in x; do ugosa eval -r \"$s\" -e 'e/{stem}'; done", [["eval", "-r", "$s", "-e", "e/{stem}"]]),
        ("parallel -j 4 'ugosa separate --from-list -' < songs.txt", [["separate", "--from-list", "-"]]),
        ("python scripts/gen_man.py", []),
    ],
)
def test_command_lines_are_split_as_a_shell_splits_them(line, expected):
    assert list(command_words(line)) == expected


@pytest.mark.parametrize(
    "words",
    [["separat", "song.wav"], ["separate", "song.wav", "--no-such-option"], ["separate", "song.wav", "--shifts", "two"],
     ["model", "lst"], ["eval", "-r", "ref"], ["labels", "draft", "song.wav", "--threshold"]],
)
def test_a_line_that_no_longer_parses_is_caught(words):
    assert parse_error(words)


def test_headings_get_githubs_anchors():
    assert github_slug("Scoring stems: `ugosa eval`") == "scoring-stems-ugosa-eval"
    assert github_slug("The paper's experiment (`--frame-rule`)") == "the-papers-experiment---frame-rule"
    assert github_slug("Models and the cache, `tasnet_extra`") == "models-and-the-cache-tasnet_extra"
