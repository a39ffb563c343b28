"""Generate the man page ``man/ugosa.1`` (roff) from the ugosa Typer app: every command, its options and help.

Regenerate everything (completions and the man page) with::

    python scripts/gen_completions.py && python scripts/gen_man.py

``--check`` compares instead of writing and exits 1 when the page is stale.
"""

from __future__ import annotations

import argparse
import re
import sys

from gen_completions import Command, Param, command_tree, write_or_check

from ugosa_cli import __version__, hub
from ugosa_cli.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK

OUTPUT = "man/ugosa.1"
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
_CODE = re.compile(r"`([^`]+)`")

ENVIRONMENT = [
    ("UGOSA_MODEL_ROOT", f"Where registry models are downloaded from (an http(s) URL; default {hub.DEFAULT_ROOT}). "
                         "Point it at a mirror inside a closed network."),
    ("UGOSA_CACHE_DIR", "The cache folder (default: the user cache folder, ~/.cache/ugosa on Linux, "
                        "~/Library/Caches/ugosa on macOS). Downloaded and imported models live under its models/ "
                        "folder."),
    ("UGOSA_OFFLINE", "1, true, yes or on (any case) works like `--offline`: never use the network, only cached, "
                      "imported or local model files. 0, false, no, off or empty: the network may be used. Any other "
                      "value is refused (exit 2) by every command that loads a model."),
    ("UGOSA_DOWNLOAD_TIMEOUT", "The most seconds one model download may take (default 3600), so a server that "
                               "sends a byte now and then cannot hold a run forever."),
    ("UGOSA_DEBUG", "Any value but empty or 0 works like `--debug`: errors show their full Python traceback."),
    ("NO_COLOR", "When set and not empty, messages on stderr are not coloured."),
]

FILES = [
    ("$UGOSA_CACHE_DIR/models/NAME-HASH.th", "Registry models, e.g. tasnet-beb46fac.th, downloaded on first use. "
                                             "HASH is the start of the file's SHA-256, checked on every download, "
                                             "import and load."),
    ("$UGOSA_CACHE_DIR/models/imported/NAME.th", "Models added with `ugosa model import FILE --name NAME`."),
    ("$UGOSA_CACHE_DIR/models/urls/URL-HASH/FILE", "Models given to `--model` as an http(s) URL."),
    ("*.lock", "Lock files beside cache entries, so that concurrent runs download a model once."),
    (".NAME.*.partial", "Temporary files beside every output while it is written; renamed to NAME when complete, "
                        "deleted on any failure or interruption. The next run in that folder removes those a killed "
                        "run left (untouched for 5 minutes, no live writer)."),
]

EXIT_STATUS = [
    (EXIT_OK, "Success."),
    (EXIT_FAILURE, "A failure at run time: a download, a disk, a device; or, with several tracks, at least one "
                   "track failed (the others' results are written and printed)."),
    (EXIT_BAD_INPUT, "Bad usage or bad input: an unknown option, a file that does not exist or is not audio, "
                     "labels that do not fit the song. The message names the file, line or value."),
    (EXIT_INTERRUPTED, "Interrupted (Ctrl-C, SIGINT, SIGTERM or SIGHUP). No half-written file is left behind."),
]

# The refusals that protect files, and the write failures (docs/troubleshooting.md has every message).
DIAGNOSTICS = [
    ("FILE: the drums stem of SONG would overwrite the input FILE; choose another --out or --filename",
     "exit 2. A stem of `separate` would replace a file the run reads (a later song, a labels file, a reference "
     "stem, the model file, the --from-list list). Every stem path of every song is checked before anything is "
     "written."),
    ("a/mixture.wav and b/mixture.wav would both be written to PATH (...); put the song's folder in the name: "
     "--filename '{model}/{parent}/{track}/{stem}.{ext}'",
     "exit 2. Songs with the same file name would overwrite each other's stems; {parent} is the name of the "
     "song's folder."),
    ("FILE: refusing to overwrite the labels file; choose another --out",
     "exit 2. `adapt -o`, `labels convert -o` and `labels from-stems -o` never replace a file they read (the song, "
     "labels, reference stems, the model being adapted, the stems), even with --force."),
    ("FILE: exists already; add --force to replace it, or choose another --out",
     "exit 2, before any work. `adapt`, `labels convert|from-stems -o` and `demo --out` replace an earlier result "
     "only with --force; `separate` always rewrites its own stems (--skip-existing keeps them)."),
    ("FILE: is a folder, ...", "exit 2. A folder has the name of a file ugosa writes: remove it or write elsewhere."),
    ("--segment 0.001: use 1 to 60 seconds (this model's default is 8 s)",
     "exit 2. --segment must be a finite number of seconds in that range (at least the model's shortest input)."),
    ("PATH: a symbolic link loop (a link that points back to itself); remove or fix the link",
     "exit 2. A path given (a song, --out, --labels, ...) goes through a link that leads back to itself."),
    ("NAME: a name of N bytes, longer than the 255 this file system allows; choose a shorter --out",
     "exit 2, before any work. Every output name (a stem from --filename, the adapted model, labels) is checked."),
    ("FILE: would be written to FOLDER, outside --out DIR (a folder on the way is a link that leads out of it); ...",
     "exit 2. A folder under --out was replaced by a link while the run worked; nothing is written there."),
    ("no space left on device writing FILE; free some space or write elsewhere",
     "exit 1. The disk or the quota is full; nothing half-written is left."),
]

EXAMPLES = [
    ("Separate two songs into four stems under separated/tasnet/TRACK/:", "ugosa separate a.wav b.flac"),
    ("Separate every song listed in a file, skipping those already done, in 24-bit FLAC:",
     "ugosa separate --from-list songs.txt --skip-existing --format flac --bits 24"),
    ("Separate MUSDB18 tracks, which are all called mixture.wav, each under its folder's name:",
     "ugosa separate musdb/test/*/mixture.wav --filename '{model}/{parent}/{track}/{stem}.{ext}'"),
    ("Feed paths from another program and read the results as JSON:",
     "find music -name '*.wav' | ugosa separate --from-list - --json | jq -r '.stems.vocals'"),
    ("Adapt the model to a song from where its instruments play, then separate with the adapted model:",
     "ugosa adapt song.wav --labels song.txt -o song.th\nugosa separate song.wav --model song.th"),
    ("Adapt and separate in one step, one labels file per song found by a template:",
     "ugosa separate music/*.wav --labels '{dir}/{track}.txt'"),
    ("Apply the labels to the stems another separator made (a folder of vocals.wav, drums.wav, ...):",
     "ugosa filter song.wav --stems uvr_out/ --labels song.txt"),
    ("Show how long the adaptation would take, without training:", "ugosa adapt song.wav --labels song.txt --dry-run"),
    ("Score the stems against reference stems:", "ugosa eval --references musdb/track --estimates separated/tasnet/track"),
    ("Use ugosa without network: fetch the model file elsewhere, then import it:",
     "ugosa model import tasnet-beb46fac.th\nUGOSA_OFFLINE=1 ugosa separate song.wav"),
]

# Where the long documentation lives: there is no website, so the files of the source distribution.
DOCUMENTATION_INTRO = ("The full documentation is in the source distribution of ugosa (and its source tree), as "
                       "Markdown files; every command also has --help.")
DOCUMENTATION = [
    ("README.md", "What ugosa does, a quick start, the six commands a user needs, the models, and links to the "
                  "pages below."),
    ("docs/separating.md", "Inputs, output formats, the --filename template, segments, devices, file safety, the "
                           "report page."),
    ("docs/labels.md", "Label files (Audacity, CSV, TSV, frames, JSON), the vocabulary and --map, the draft, how to "
                       "make labels that pay, labels as a picture."),
    ("docs/filtering.md", "ugosa filter: the labels applied to stems from any separator, how stems are named, the "
                          "two modes, stems that do not match."),
    ("docs/adapting.md", "Strategies, settings, the CPU plan, --resplit and --gate, what adapting gains."),
    ("docs/models.md", "Model names, files, BS-RoFormer, Mel-Band RoFormer and SCNet checkpoints from MSST and UVR "
                       "(--config), URLs and hashes, the cache, environment variables, offline machines."),
    ("docs/scripting.md", "stdout, --json and stdin, exit codes, batches, --skip-existing, GNU parallel and Slurm."),
    ("docs/evaluation.md", "ugosa eval and its metrics, ugosa demo, ugosa bench and the paper's experiment."),
    ("docs/troubleshooting.md", "Every error message: its cause and what to do."),
    ("BENCHMARKS.md", "Measured speed, memory and quality, with the commands that measured them."),
]


def escape(text: str) -> str:
    """Plain text -> roff: backslashes, option dashes, `code` in bold, no control character at line start."""
    text = text.replace("\\", "\\e")
    text = _CODE.sub(lambda m: "\\fB" + m.group(1) + "\\fR", text)
    text = _OPTION.sub(lambda m: m.group(1).replace("-", "\\-"), text)
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in text.split("\n"))


def _paragraphs(text: str) -> list[str]:
    out = []
    for block in text.strip().split("\n\n"):
        if block.strip():
            out += [".PP", escape(" ".join(block.split()))]
    return out


def _usage(command: Command) -> str:
    words = [f"\\fB{escape(command.name)}\\fR"]
    if command.options:
        words.append("[\\fIOPTIONS\\fR]")
    for argument in command.arguments:
        word = f"\\fI{argument.metavar}\\fR" + ("..." if argument.repeatable else "")
        words.append(word if argument.required else f"[{word}]")
    if command.subcommands:
        words.append("\\fICOMMAND\\fR")
    return " ".join(words)


def _param_head(param: Param) -> str:
    if not param.flags:
        return f"\\fI{param.metavar}\\fR" + ("..." if param.repeatable else "")
    flags = ", ".join(f"\\fB{escape(flag)}\\fR" for flag in param.flags)
    return flags + (f" \\fI{param.metavar}\\fR" if param.takes_value else "")


def _params(params: tuple[Param, ...]) -> list[str]:
    lines = []
    for param in params:
        lines += [".TP", _param_head(param), escape(" ".join(param.help.split()))]
    return lines


def _command(command: Command) -> list[str]:
    lines = [".SS " + _usage(command)]
    lines += _paragraphs(command.help)
    lines += _params(command.arguments + command.options)
    for sub in command.subcommands:
        lines += _command(sub)
    return lines


def _definitions(title: str, rows: list[tuple[object, str]], bold: bool = True, intro: str = "") -> list[str]:
    lines = [f".SH {title}", *_paragraphs(intro)]
    for term, text in rows:
        head = escape(str(term))
        lines += [".TP", f"\\fB{head}\\fR" if bold else head, escape(text)]
    return lines


def man_page(tree: Command) -> str:
    lines = [
        '.\\" Generated from the ugosa command line by scripts/gen_man.py; do not edit.',
        f'.TH UGOSA 1 "" "ugosa {__version__}" "User Commands"',
        ".ad l",
        ".SH NAME",
        "ugosa \\- separate music into stems, and adapt the separator to one song",
        ".SH SYNOPSIS",
    ]
    for command in tree.walk():
        if not command.subcommands:
            lines += [".br", _usage(command)]
    lines += [".SH DESCRIPTION"] + _paragraphs(tree.help)
    lines += [".SH OPTIONS"] + _params(tree.options)
    lines += [".SH COMMANDS"]
    for command in tree.subcommands:
        lines += _command(command)
    lines += _definitions("ENVIRONMENT", ENVIRONMENT)
    lines += _definitions("FILES", FILES)
    lines += _definitions("EXIT STATUS", EXIT_STATUS)
    lines += _definitions("DIAGNOSTICS", DIAGNOSTICS)
    lines += [".SH EXAMPLES"]
    for text, example in EXAMPLES:
        lines += [".PP", escape(text), ".PP", ".RS 4", ".nf", escape(example), ".fi", ".RE"]
    lines += _definitions("DOCUMENTATION", DOCUMENTATION, bold=False, intro=DOCUMENTATION_INTRO)
    lines += [".SH SEE ALSO", "\\fBjq\\fR(1), \\fBparallel\\fR(1), \\fBsbatch\\fR(1)", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page differs from a fresh generation")
    return write_or_check({OUTPUT: man_page(command_tree())}, parser.parse_args().check)


if __name__ == "__main__":
    sys.exit(main())
