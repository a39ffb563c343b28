"""``ugosa model``: list, download, locate, import and remove pretrained models in the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ugosa_cli import hub
from ugosa_cli.cli import common
from ugosa_cli.errors import InputError

app = typer.Typer(
    help=(
        "Manage pretrained models and the model cache.\n\n"
        "The cache is $UGOSA_CACHE_DIR/models (default: the user cache folder for ugosa); registry models "
        "download from $UGOSA_MODEL_ROOT. With no network, fetch the file elsewhere and `ugosa model import` it."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def _status(row: hub.ModelInfo) -> str:
    if row.corrupt:
        return "corrupt"
    if row.kind == "remote":
        return "cached" if row.available else "not cached"
    return row.kind if row.available else "missing"


def _row_json(row: hub.ModelInfo) -> dict[str, Any]:
    return {
        "name": row.name,
        "description": row.description,
        "kind": row.kind,
        "default": row.default,
        "available": row.available,
        "corrupt": row.corrupt,
        "size": row.size,
        "path": str(row.path) if row.available or row.corrupt else None,
        "paths": [str(p) for p in row.paths] if row.available or row.corrupt else None,
        "sha256": list(row.sha256),
        "url": row.url,
    }


@app.command("list")
def list_models(json_out: common.JsonOut = False, quiet: common.Quiet = False, debug: common.Debug = False) -> None:
    """Show every known model: name, status (cached, not cached, corrupt), size, SHA-256, description and path.

    A cached file whose name carries a SHA-256 prefix is hashed: it is corrupt if its hash does not match.
    The SHA-256 column shows the first 8 hex digits of each file (a bag has several); --json gives them whole
    for cached files.
    """
    common.configure(quiet=quiet, debug=debug)
    rows = hub.list_models()
    if json_out:
        common.emit_json({"cache": str(hub.models_dir()), "models": [_row_json(row) for row in rows]})
        return
    table: list[tuple[str, ...]] = [("NAME", "STATUS", "SIZE", "SHA-256", "DESCRIPTION", "PATH")]
    for row in rows:
        description = row.description + (" (default)" if row.default else "")
        shown = str(row.path) if row.available or row.corrupt else "-"
        if len(row.paths) > 1 and shown != "-":
            shown = f"{row.path.parent}/ ({len(row.paths)} files)"
        digests = ",".join(digest[:8] for digest in row.sha256) or "-"
        cells = (row.name, _status(row), _size(row.size), digests, description, shown)
        table.append(tuple(common.printable(cell) for cell in cells))
    widths = [max(len(line[i]) for line in table) for i in range(5)]
    for line in table:
        common.emit("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[5])
    common.info(f"model cache: {hub.models_dir()}")
    for row in rows:
        if row.corrupt:
            fix = "reinstall ugosa" if row.kind == "packaged" else f"remove it with `ugosa model remove {row.name}`"
            common.warn(f"{row.path}: corrupt (its SHA-256 does not match the prefix in its name); {fix}")


@app.command("download")
def download(
    names: Annotated[
        Optional[list[str]],
        typer.Argument(
            help=f"Registry model names or http(s) URLs (default: {hub.DEFAULT_MODEL}).", show_default=False
        ),
    ] = None,
    json_out: common.JsonOut = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Download models into the cache (verified against their SHA-256 prefix) and print their paths."""
    common.configure(quiet=quiet, debug=debug)
    specs = names or [hub.DEFAULT_MODEL]
    unknown = [spec for spec in specs if not hub.is_url(spec) and spec not in hub.known_names()]
    if unknown:
        raise hub.unknown_model_error(unknown[0])
    for spec in specs:
        loaded = common.load_model(spec)
        paths = hub.locate(spec)
        assert paths, "a resolved registry model or URL is on disk"
        if json_out:
            common.emit_json({"name": loaded.name, "path": str(paths[0]), "paths": [str(p) for p in paths],
                              "sha256": loaded.sha256, "size": sum(p.stat().st_size for p in paths)})
        else:
            for path in paths:
                common.emit_path(path)


@app.command("path")
def path(
    name: Annotated[str, typer.Argument(help="A registry or imported model name, or a cached URL.")],
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Print the local file of a model (each file of a bag, one per line); exit 2 if it is not cached."""
    common.configure(quiet=quiet, debug=debug)
    found = hub.locate(name)
    if found is None:
        raise InputError(
            f"{name} is not in the model cache; run `ugosa model download {name}` "
            "(offline: `ugosa model import FILE`)"
        )
    for path in found:
        common.emit_path(path)


@app.command("import")
def import_model(
    file: Annotated[Path, typer.Argument(help="A model file: a registry file such as tasnet-beb46fac.th, or any "
                                              "ugosa checkpoint or ConvTasNet state dict.")],
    name: Annotated[
        Optional[str],
        typer.Option("--name", help="Store it as this model (a registry name, or a new name; default: from the file "
                                    "name)."),
    ] = None,
    json_out: common.JsonOut = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Copy a model file into the cache, after checking it loads and matches its SHA-256 prefix."""
    common.configure(quiet=quiet, debug=debug)
    imported, target = hub.import_model(file, name)
    common.info(f"imported {file} as model {imported!r}; use it with --model {imported}")
    if json_out:
        common.emit_json({"name": imported, "path": str(target)})
    else:
        common.emit_path(target)


@app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="A registry or imported model name, or a cached URL.")],
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Delete a model from the cache and print the removed paths."""
    common.configure(quiet=quiet, debug=debug)
    for path in hub.remove_model(name):
        common.emit_path(path)
