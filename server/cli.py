"""The ``topicfeed`` command line: thin click commands over ``feeds`` and ``server``."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from feeds.importer import SyncReport, sync
from feeds.validate import check_tree

from .instance import default_instance, init_instance

instance_option = click.option(
    "--instance", "instance", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Instance folder (config, keys, SQLite index). Default: $TOPICFEED_INSTANCE or ./instance.")


def _instance(value: Path | None) -> Path:
    return (value or default_instance()).resolve()


def _app(instance: Path | None, **overrides: Any):  # type: ignore[no-untyped-def]
    from . import create_app

    return create_app(overrides or None, _instance(instance))


def _progress(items: list, total: int):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(items, total=total, unit="file", desc="import", file=sys.stderr, disable=None, leave=False)


def print_report(report: SyncReport) -> None:
    click.echo(report.summary())
    for error in report.skipped:
        click.echo(f"skipped {error}", err=True)
    for dup, kept in report.duplicates:
        click.echo(f"duplicate {dup}: same URL as {kept}, which is kept", err=True)
    for override in report.overrides:
        click.echo(f"overridden {override}", err=True)
    for article_id in report.kept_previous:
        click.echo(f"kept previous version of {article_id} (its file is now invalid)", err=True)


@click.group()
@click.version_option(package_name="topicfeed")
def main() -> None:
    """topicfeed: topic feeds, a signed JSON API and a browser companion for a news collection."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


@main.command()
@instance_option
def init(instance: Path | None) -> None:
    """Create the instance folder, its config and a master key (mode 0600)."""
    path = _instance(instance)
    created = init_instance(path)
    click.echo(f"{'initialised' if created else 'already initialised'}: {path}")


@main.command(name="import")
@click.argument("content_dirs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Exit non-zero if any file was skipped.")
@instance_option
def import_(content_dirs: tuple[Path, ...], strict: bool, instance: Path | None) -> None:
    """Sync the index with CONTENT_DIRS (default: the CONTENT_DIRS setting).

    Later directories override earlier ones for records with the same id. Files removed
    from the directories leave the index; source files are never modified.
    """
    from . import get_store

    app = _app(instance)
    roots = list(content_dirs) or [Path(p) for p in app.config["CONTENT_DIRS"]]
    if not roots:
        raise click.UsageError("give CONTENT_DIRS or set content_dirs in config.toml")
    report = sync(get_store(app), roots, progress=_progress)
    print_report(report)
    if strict and report.skipped:
        sys.exit(1)


@main.command()
@click.argument("content_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
def check(content_dirs: tuple[Path, ...]) -> None:
    """Validate CONTENT_DIRS without writing anything; exit 1 if any file is invalid."""
    report = check_tree(list(content_dirs))
    print_report(report)
    if report.skipped:
        sys.exit(1)


@main.command(name="demo-content")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--articles", type=click.IntRange(1, 1_000_000), default=300, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
def demo_content(out_dir: Path, articles: int, seed: int) -> None:
    """Write a synthetic content tree (same layout as a real one) for demos and benchmarks."""
    from feeds.demo import write_demo_content

    write_demo_content(out_dir, articles, seed)
    click.echo(f"wrote {articles} articles to {out_dir}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Import built-in sample content first if the index is empty.")
@instance_option
def serve(host: str, port: int, threads: int, demo: bool, instance: Path | None) -> None:
    """Serve feeds and the API with waitress (a production WSGI server)."""
    import waitress

    from . import get_store
    from .requestlog import RequestLog

    app = _app(instance)
    store = get_store(app)
    if demo and store.stats()["articles"] == 0:
        from feeds.demo import write_demo_content

        content = Path(app.instance_path) / "demo-content"
        if not (content / "_news").is_dir():
            write_demo_content(content, 300, seed=1)
        print_report(sync(store, [content]))
    click.echo(f"topicfeed serving {store.stats()['public']} articles on http://{host}:{port}/", err=True)
    waitress.serve(RequestLog(app), host=host, port=port, threads=threads, ident="topicfeed")


@main.command()
@instance_option
def config(instance: Path | None) -> None:
    """Print every setting with its current value and help."""
    from .settings import SETTINGS

    app = _app(instance)
    for setting in SETTINGS:
        click.echo(f"{setting.name.lower()} = {app.config[setting.name]!r}    # {setting.help}")
