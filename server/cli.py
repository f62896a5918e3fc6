"""The ``topicfeed`` command line: thin click commands over ``feeds`` and ``server``.

Commands import what they use when they run: ``topicfeed import`` (and ``import --watch``)
opens the store without building the Flask app, so the import process and the workers it
forks hold neither Flask nor the views (``python -X importtime -m server.cli import --help``).
"""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .instance import default_instance, init_instance
from .logs import TEXT_FORMAT, configure_logging
from .serving import DEFAULT_THREADS, ONE_PROCESS, SERVERS

if TYPE_CHECKING:
    from flask import Flask

    from feeds.importer import SyncReport
    from feeds.store import Store

    from .writerlock import WriterLease


@contextmanager
def _one_line_errors(path: Path) -> Iterator[None]:
    """Turn a missing instance, a bad setting or an unusable index into a one-line error."""
    try:
        yield
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    except (ValueError, RuntimeError, OSError, ImportError) as exc:  # ImportError: a missing database driver
        raise click.ClickException(f"instance {path}: {exc}") from None


@dataclass
class CliState:
    """What one ``topicfeed`` invocation shares between the group and its command: the instance
    folder (``--instance`` before or after the command name), its settings and the app or the
    bare store, each built once."""

    instance: Path | None = None
    _app: Flask | None = None
    _settings: dict[str, Any] | None = None
    _store: Store | None = None

    @property
    def path(self) -> Path:
        return (self.instance or default_instance()).resolve()

    def settings(self) -> dict[str, Any]:
        """The instance's settings (logging configured from them, before start-up logs a
        migration); a missing instance or a bad setting is a one-line error."""
        if self._settings is None:
            from .instance import require_instance
            from .settings import load_settings

            with _one_line_errors(self.path):
                require_instance(self.path)
                self._settings = load_settings(self.path)
            configure_logging(self._settings["LOG_FORMAT"])
        return self._settings

    def store(self) -> Store:
        """The instance's store without the Flask app (for ``import``): migrated at start as the
        app's would be; an unusable index is a one-line error."""
        if self._store is None:
            from . import open_store

            settings = self.settings()
            with _one_line_errors(self.path):
                self._store = open_store(settings, self.path)
        return self._store

    def app(self) -> Flask:
        """The app for this instance; a bad setting or unusable index is a one-line error."""
        if self._app is None:
            from . import create_app

            from .roles import writer_lease

            self.settings()
            with _one_line_errors(self.path):
                self._app = create_app(None, self.path, init=False)
            lease = writer_lease(self._app)
            if lease is not None:  # a writer's command claimed it: ended at exit unless its server still runs
                lease.release_at_exit()
        return self._app

    def exists(self) -> bool:
        """Whether the instance folder was initialised (``topicfeed init``)."""
        from .instance import KEYS_FILE

        return (self.path / KEYS_FILE).is_file()


def _store(app: Flask) -> Store:
    """The app's store (``server.context`` loads Flask: only commands that built an app call this)."""
    from .context import get_store

    return get_store(app)


def _master_keys(app: Flask) -> list[str]:
    """The app's master keys, oldest first."""
    from .context import master_keys

    return master_keys(app)


def _keys(path: Path) -> list[str]:
    """The instance's master keys; a missing or malformed keys.json is a one-line error."""
    from .instance import load_keys

    try:
        return load_keys(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"instance {path}: {exc!s:.300}") from None


def _writer_only(path: Path, what: str) -> None:
    """A one-line refusal when the instance is a reader (``role = 'reader'``): ``what`` changes
    local-disk state (record files, keys.json) or the schema, which only the writer owns."""
    from .roles import is_reader, refusal
    from .settings import load_settings

    try:
        settings = load_settings(path)
    except ValueError as exc:
        raise click.ClickException(f"instance {path}: {exc}") from None
    if is_reader(settings):
        raise click.ClickException(refusal(settings, what))


def _set_instance(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.ensure_object(CliState).instance = value


instance_option = click.option(
    "--instance", type=click.Path(file_okay=False, path_type=Path), default=None, expose_value=False,
    callback=_set_instance, help="Instance folder (config, keys, SQLite index). Default: $TOPICFEED_INSTANCE or ./instance.")
pass_state = click.make_pass_decorator(CliState, ensure=True)


def _progress(items: Iterable[Any], total: int) -> Iterable[Any]:
    from tqdm import tqdm

    return tqdm(items, total=total, unit="file", desc="import", file=sys.stderr, disable=None, leave=False)


def print_report(report: SyncReport, summary: bool = True) -> None:
    if summary:
        click.echo(report.summary())
    for error in report.skipped:
        click.echo(f"skipped {error}", err=True)
    for dup, kept in report.duplicates:
        click.echo(f"duplicate {dup}: same URL as {kept}, which is kept", err=True)
    for override in report.overrides:
        click.echo(f"overridden {override}", err=True)
    for article_id in report.kept_previous:
        click.echo(f"kept previous version of {article_id} (its file is now invalid)", err=True)


class _Commands(click.Group):
    """The command group; a database that cannot be reached (PostgreSQL down, a wrong host or
    port, its ``max_connections`` reached) is one line naming ``database_url``, whichever
    command met it and whenever (at start or midway)."""

    def invoke(self, ctx: click.Context) -> Any:
        # made here, before any sub-context: every nested command's --instance lands in this one
        # object, so the message below names the folder given (not ./instance)
        ctx.ensure_object(CliState)
        try:
            return super().invoke(ctx)
        except Exception as exc:
            from feeds.store import UNAVAILABLE  # lazily: most commands start without the store

            if not isinstance(exc, UNAVAILABLE):
                raise
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
            state = ctx.find_object(CliState) or CliState()
            raise click.ClickException(f"instance {state.path}: setting 'database_url': the database refused or "
                                       f"dropped the connection: {reason:.300}") from None


@click.group(cls=_Commands)
@click.version_option(package_name="topicfeed")
@instance_option
def main() -> None:
    """topicfeed: topic feeds, a signed JSON API and a browser companion for a news collection."""
    logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)


@main.command()
@instance_option
@pass_state
def init(state: CliState) -> None:
    """Create the instance folder, its config and a master key (mode 0600)."""
    path = state.path
    created = init_instance(path)
    click.echo(f"{'initialised' if created else 'already initialised'}: {path}")


def _publish_signing_key(state: CliState) -> None:
    """After a key change on a writer: record its new signing key's id for readers to check
    (``roles.publish_signing_key``; building the writer's app does it)."""
    from .settings import load_settings

    if load_settings(state.path)["ROLE"] == "writer":
        state.app()


@main.command(name="import")
@click.argument("content_dirs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Exit non-zero if any file was skipped.")
@click.option("--allow-mass-removal", is_flag=True,
              help="Remove articles even when more than import_max_removal of the index would go.")
@click.option("--watch", is_flag=True, help="Keep running: import again whenever the roots change and then stay "
              "quiet for watch_debounce seconds (SIGTERM stops).")
@instance_option
@pass_state
def import_(state: CliState, content_dirs: tuple[Path, ...], strict: bool, allow_mass_removal: bool,
            watch: bool) -> None:
    """Sync the index with CONTENT_DIRS (default: the CONTENT_DIRS setting).

    Later directories override earlier ones for records with the same id. Files removed
    from the directories leave the index; source files are never modified. Roots without
    any record, or an import that would remove more than import_max_removal of the index,
    are refused (nothing changes). One import runs at a time per instance (others wait).
    """
    from feeds.importer import ImportRefused
    from feeds.importjob import run_import

    _writer_only(state.path, "imports")
    config = state.settings()
    roots = list(content_dirs) or [Path(p) for p in config["CONTENT_DIRS"]]
    if not roots:
        raise click.UsageError("give CONTENT_DIRS or set content_dirs in config.toml")
    share = 1.0 if allow_mass_removal else config["IMPORT_MAX_REMOVAL"]
    store = state.store()
    lease = _hold_writer_lease(state, store)
    try:
        if watch:
            _watch(store, state.path, roots, config, lease)
            return
        report = run_import(store, roots, state.path, progress=_progress, max_removal=share,
                            memory_mb=config["IMPORT_MEMORY_MB"])
    except ImportRefused as exc:
        raise click.ClickException(f"{exc}; nothing was changed") from None
    except FileNotFoundError as exc:  # a configured content root that is not there
        raise click.ClickException(str(exc)) from None
    except click.ClickException:  # the watch's own one line (it stopped after a take-over)
        raise
    except Exception:
        if lease.held():  # not a take-over (its store fence raises WriterFenced)
            raise
        raise click.ClickException(f"import stopped, its changes rolled back: {lease.taken_by} took the writer "
                                   "lease over (`topicfeed writer status` names it)") from None
    # renewed (and the running lock held) until the exit releases it (release_at_exit): the WebSub
    # pass below still writes, and on SQLite the row was not renewed during the import's transaction
    print_report(report)
    if config["PUBLIC_BASE_URL"]:  # a WebSub hub can only be enabled with it (websub_worker.Hub.enabled)
        store.close()
        _websub_pass(state.app())
    if strict and report.skipped:
        sys.exit(1)


def _hold_writer_lease(state: CliState, store: Store) -> WriterLease:
    """Claim the writer lease for this instance and renew it while the command runs (a
    one-line refusal when another writer holds it; the server on this instance folder is this
    same writer)."""
    from .writerlock import WriterBusy, WriterLease

    try:
        with _one_line_errors(state.path):
            lease = WriterLease(store, state.path, state.settings()["WRITER_LEASE_SECONDS"])
        lease.hold()
    except WriterBusy as exc:
        raise click.ClickException(str(exc)) from None
    lease.release_at_exit()  # when no server of this instance runs, the next writer need not wait
    return lease


def _watch(store: Store, instance: Path, roots: list[Path], config: dict[str, Any], lease: WriterLease) -> None:
    """Run the watcher until SIGTERM or SIGINT, or until another writer takes the lease over."""
    import signal
    import threading

    from feeds.watch import watch

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    lease.hold(on_lost=stop.set)  # already held: this only names what to do when it is lost
    try:
        watch(store, roots, instance, config["WATCH_DEBOUNCE"], stop, config["IMPORT_MAX_REMOVAL"])
    except Exception:
        if lease.held():  # not a take-over (which stops an import in progress: WriterFenced, rolled back)
            raise
    if lease.lost.is_set():
        raise click.ClickException(f"stopped watching: another writer took the writer lease over ({lease.taken_by}; "
                                   "`topicfeed writer status` names it)")


@main.command()
@click.option("--show", is_flag=True, help="Only print the index's schema revision and this version's.")
@instance_option
@pass_state
def upgrade(state: CliState, show: bool) -> None:
    """Migrate the index to this version's schema (also done at start unless auto_upgrade is false)."""
    from feeds.store import SchemaError, index_revision, upgrade_index

    url = _database_url(state.path)
    if not show:
        _writer_only(state.path, "migrations")
        _not_while_another_writer(state.path, url)
    try:
        if show:
            current, head = index_revision(url)
            click.echo(f"index at revision {current or 'none (empty)'}; this topicfeed's is {head}")
            return
        before, after = upgrade_index(url)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"already at revision {after}" if before == after else f"upgraded from {before or 'empty'} to {after}")


@main.command()
@click.argument("revision")
@instance_option
@pass_state
def downgrade(state: CliState, revision: str) -> None:
    """Undo schema revisions down to REVISION, before installing an older topicfeed (run it with this one)."""
    from feeds.store import SchemaError, downgrade_index

    _writer_only(state.path, "migrations")
    _not_while_another_writer(state.path, _database_url(state.path))
    try:
        before, after = downgrade_index(_database_url(state.path), revision)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"downgraded from {before} to {after}")


def _not_while_another_writer(path: Path, url: str) -> None:
    """A one-line refusal of a migration from an instance that is not the writer holding the
    lease (the running writer's schema would change under it). Read without migrating: an
    index from before the lease (revision 0008) has no lease to respect."""
    from feeds.store import read_lease

    from .writerlock import busy, this_writer

    lease = read_lease(url)
    with _one_line_errors(path):
        mine = this_writer(lease, path) if lease is not None else True
    if lease is not None and lease.holder and not mine and lease.live:
        raise click.ClickException(busy(lease, path))


def _database_url(path: Path) -> str:
    """The index's URL without opening the store (which would upgrade it)."""
    from . import index_url
    from .instance import require_instance
    from .settings import load_settings

    try:
        require_instance(path)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        return index_url(load_settings(path), path)
    except ValueError as exc:
        raise click.ClickException(f"instance {path}: {exc}") from None


@main.command()
@click.argument("content_dirs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@instance_option
@pass_state
def check(state: CliState, content_dirs: tuple[Path, ...]) -> None:
    """Validate CONTENT_DIRS and say what `import` would do, writing nothing; exit 1 if any
    file is invalid or the import would be refused.

    With an instance (--instance, $TOPICFEED_INSTANCE or ./instance) the counts are against
    its index; without one, against an empty index. CONTENT_DIRS default to content_dirs.
    """
    from feeds.importer import ImportRefused, guard_mass_removal
    from feeds.validate import check_tree

    app = state.app() if state.exists() else None
    roots = list(content_dirs) or ([Path(p) for p in app.config["CONTENT_DIRS"]] if app else [])
    if not roots:
        raise click.UsageError("give CONTENT_DIRS or set content_dirs in the instance's config.toml")
    store = _store(app) if app else None
    try:
        report = check_tree(roots, store)
        indexed = store.stats()["articles"] if store else 0
        click.echo(f"import would: {report.summary()}" +
                   ("" if app else f" (no instance at {state.path}: compared with an empty index)"))
        print_report(report, summary=False)
        if app:
            guard_mass_removal(indexed, len(report.removed), app.config["IMPORT_MAX_REMOVAL"])
    except ImportRefused as exc:
        raise click.ClickException(f"import would be refused: {exc}") from None
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
@click.option("--server", "server_name", type=click.Choice(SERVERS), default="granian", show_default=True,
              help="HTTP server (bench/RESULTS.md compares them).")
@click.option("--threads", default=None, type=click.IntRange(1),
              help="Threads per process  [default: 2 for granian, 8 for the others]")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1),
              help="Processes (granian, gunicorn); each holds its own render cache.")
@click.option("--demo", is_flag=True,
              help="Quick start: create the instance if needed (like `init`) and import sample content into an empty index.")
@instance_option
@pass_state
def serve(state: CliState, host: str, port: int, server_name: str, threads: int | None, workers: int,
          demo: bool) -> None:
    """Serve feeds and the API with a production HTTP server (granian by default; see bench/RESULTS.md).

    At start the index is reconciled with the content roots (content_dirs, else those of
    the last import), under the same guards as `import`; a refused sync is reported and the
    index is served as it is. Connection, header and body limits come from the settings.
    """
    import signal

    from feeds.importjob import run_import

    from .roles import is_reader
    from .serving import Limits, run

    threads = threads or DEFAULT_THREADS[server_name]
    if demo:
        _writer_only(state.path, "imports (--demo)")
        init_instance(state.path)  # the README's quick start: one command from nothing
    elif not state.exists():  # before _metrics_dir, which would leave a stray ./instance/metrics
        state.app()  # raises the one-line "no instance at …"
    if workers > 1 and server_name in ONE_PROCESS:
        raise click.UsageError(f"--workers: {server_name} runs one process; use --threads, or granian or gunicorn")
    _metrics_dir(state.path)
    app = state.app()
    store = _store(app)
    from .roles import writer_lease

    lease = writer_lease(app)
    if lease is not None:  # renewed through a long start-up reconcile; the serving processes take over
        lease.hold()
    if demo and store.stats()["articles"] == 0:
        from feeds.demo import write_demo_content

        content = Path(app.instance_path) / "demo-content"
        if not (content / "_news").is_dir():
            write_demo_content(content, 300, seed=1)
        print_report(run_import(store, [content], state.path))
    elif not is_reader(app.config):  # a reader has no record files: the writer reconciles
        _reconcile(app, state.path)
    _check_port(host, port)
    click.echo(f"topicfeed serving {store.stats()['public']} articles on http://{host}:{port}/ "
               f"({server_name}, {workers} process(es) x {threads} threads)", err=True)
    if server_name in ONE_PROCESS:  # the server runs here: it serves this app (one store pool per process)
        _SERVED[os.getpid()] = app
    elif lease is not None:  # the server's processes claim and renew it themselves
        lease.stop()
    store.close()  # idle connections (in the server's processes the pool fills again as needed)
    os.environ["TOPICFEED_INSTANCE"] = str(state.path)  # the server's workers build the app from it
    # As a container's PID 1 the kernel ignores SIGTERM unless a handler is installed: exit cleanly
    # on it (gunicorn and granian install their own in their supervisor).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        run(server_name, "server.cli:wsgi_app", host, port, threads, workers, Limits.of(app.config))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:  # lost a race for the port after _check_port
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


# The app `serve` built, by the pid of the process that built it: a server that runs in that
# process (ONE_PROCESS) serves it rather than a second app with a second store pool; forked
# workers (gunicorn) see another pid and build their own.
_SERVED: dict[int, Flask] = {}


def _check_port(host: str, port: int) -> None:
    """A one-line error when ``host:port`` cannot be bound (busy, or not an address of this
    machine), before a server (which may be another process: granian) reports it its own way."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            probe.bind(address)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _reconcile(app: Flask, instance: Path) -> None:
    """Bring the index in line with the files (after a crash, or edits while stopped)."""
    import json

    from feeds.importer import ImportRefused
    from feeds.importjob import run_import
    from feeds.store import WriterFenced

    configured = app.config["CONTENT_DIRS"]
    stored = _store(app).get_meta("roots")
    roots = [Path(p) for p in (configured or (json.loads(stored) if stored else []))]
    if not roots:
        return
    try:
        report = run_import(_store(app), roots, instance, max_removal=app.config["IMPORT_MAX_REMOVAL"])
    except ImportRefused as exc:
        click.echo(f"not reconciled with the content files: {exc}; serving the index as it is", err=True)
        return
    except WriterFenced:
        raise click.ClickException("not started: another writer took the writer lease over during the start-up "
                                   "reconcile (`topicfeed writer status` names it)") from None
    click.echo(f"reconciled with {len(roots)} content root(s): {report.summary()}", err=True)


def _metrics_dir(instance: Path) -> None:
    """Give this server's processes a fresh shared folder for /metrics (prometheus_client's
    multiprocess mode), unless the service manager set ``PROMETHEUS_MULTIPROC_DIR`` itself.
    Must run before anything imports prometheus_client."""
    import shutil

    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        folder = instance / "metrics"
        shutil.rmtree(folder, ignore_errors=True)  # counters from a previous run would be added in
        folder.mkdir(parents=True, mode=0o700)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


@main.command()
@instance_option
@pass_state
def config(state: CliState) -> None:
    """Print every setting with its current value and help."""
    from .settings import SETTINGS

    app = state.app()
    for setting in SETTINGS:
        click.echo(f"{setting.name.lower()} = {app.config[setting.name]!r}    # {setting.help}")


@main.command()
@instance_option
@pass_state
def status(state: CliState) -> None:
    """The index's counts and the last import in full, its error text included (/healthz, which
    is public, gives only the result and time)."""
    import datetime

    store = _store(state.app())
    stats, last, counts = store.stats(), store.last_import(), store.import_counts()
    click.echo(f"store version {store.version()}: {stats['articles']} article(s), {stats['public']} public, "
               f"{stats['bad_files']} bad file(s)")
    if last is None:
        click.echo("last import: none recorded")
    else:
        finished = datetime.datetime.fromtimestamp(last.finished_ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"last import: {last.result} at {finished} UTC after {last.duration_s:.1f} s: {last.summary}")
    click.echo(f"imports: {counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed")


@main.group()
def keys() -> None:
    """Master keys: the newest signs, all verify."""


@keys.command("rotate")
@instance_option
@pass_state
def keys_rotate(state: CliState) -> None:
    """Add a new master key; tokens and signatures made with older keys stay valid."""
    import secrets

    from .instance import save_keys

    path = state.path
    _writer_only(path, "key rotations (then copy its keys.json to every process)")
    current = _keys(path)
    save_keys(path, current + [secrets.token_urlsafe(32)])
    _publish_signing_key(state)
    click.echo(f"{len(current) + 1} keys; the new one signs from now on")


@keys.command("prune")
@click.option("--keep", type=click.IntRange(1), default=1, show_default=True, help="How many of the newest keys to keep.")
@instance_option
@pass_state
def keys_prune(state: CliState, keep: int) -> None:
    """Drop all but the newest KEEP keys: what they signed stops verifying."""
    from .instance import save_keys

    path = state.path
    _writer_only(path, "key prunes (then copy its keys.json to every process)")
    current = _keys(path)
    save_keys(path, current[-keep:])
    _publish_signing_key(state)
    click.echo(f"dropped {max(len(current) - keep, 0)} key(s), kept {min(keep, len(current))}")


@main.group()
def clients() -> None:
    """Paired clients (the browser extension, scripts)."""


@clients.command("add")
@click.argument("name")
@click.option("--server-url", default=None, help="URL the client reaches this server at (default: public_base_url).")
@click.option("--json", "as_json", is_flag=True, help="Print id, name, secret, token and pairing as one JSON object.")
@instance_option
@pass_state
def clients_add(state: CliState, name: str, server_url: str | None, as_json: bool) -> None:
    """Create a client and print the pairing string to paste into the extension's options."""
    import json

    from .clients import add_client, pairing_string, secret_for, token_for

    app = state.app()
    url = server_url or app.config["PUBLIC_BASE_URL"]
    if not url:
        raise click.UsageError("give --server-url or set public_base_url: the pairing string carries it")
    keyring = _master_keys(app)
    client = add_client(_store(app), keyring, name)
    pairing = pairing_string(url, client, keyring)
    if as_json:
        click.echo(json.dumps({"id": client.id, "name": client.name, "secret": secret_for(client, keyring),
                               "token": token_for(client, keyring), "pairing": pairing, "server": url.rstrip("/")}))
    else:
        click.echo(f"client {client.id} ({name}); paste this into the extension's options page:\n{pairing}")


@clients.command("list")
@instance_option
@pass_state
def clients_list(state: CliState) -> None:
    """Clients with their state (secrets are never printed)."""
    import datetime

    from .clients import list_clients

    for c in list_clients(_store(state.app())):
        created = datetime.datetime.fromtimestamp(c.created_ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{c.id}\t{c.name}\t{created}\t{'revoked' if c.revoked else 'active'}")


@clients.command("revoke")
@click.argument("client_id")
@instance_option
@pass_state
def clients_revoke(state: CliState, client_id: str) -> None:
    """Revoke a client: its token, signatures and private feed URLs stop working."""
    from .clients import revoke_client

    if not revoke_client(_store(state.app()), client_id):
        raise click.ClickException(f"no client {client_id}")
    click.echo(f"revoked {client_id}")


def _feed_format(value: str) -> str:
    """``--ext`` checked against ``feeds.render.FORMATS`` when used (that module loads lxml and feedgen)."""
    from feeds.render import FORMATS

    if value not in FORMATS:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(FORMATS)}", param_hint="'--ext'")
    return value


@clients.command("feed-url")
@click.argument("client_id")
@click.argument("feed_path")
@click.option("--ext", default="atom", show_default=True, callback=lambda _ctx, _param, value: _feed_format(value),
              help="Feed format: atom, rss or json.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Feed filter, e.g. min_quality=50.")
@click.option("--server-url", default=None, help="URL readers reach this server at (default: public_base_url).")
@instance_option
@pass_state
def clients_feed_url(state: CliState, client_id: str, feed_path: str, ext: str, params: tuple[str, ...],
                     server_url: str | None) -> None:
    """Print a private feed URL (FEED_PATH: all, topics/<slug> or providers/<domain>)."""
    from feeds.errors import QueryError

    from .clients import get_client
    from .links import Links
    from .private_feeds import private_feed_token

    app = state.app()
    url = server_url or app.config["PUBLIC_BASE_URL"]
    if not url:
        raise click.UsageError("give --server-url or set public_base_url: a feed URL must be absolute")
    client = get_client(_store(app), client_id)
    if client is None or client.revoked:
        raise click.ClickException(f"no active client {client_id}")
    malformed = [p for p in params if "=" not in p]
    if malformed:
        raise click.BadParameter(f"expected NAME=VALUE, got {malformed[0]!r}", param_hint="--param")
    filters = dict(p.split("=", 1) for p in params)
    try:
        token = private_feed_token(_store(app), client.id, feed_path, filters, _master_keys(app))
    except QueryError as exc:
        raise click.ClickException(str(exc)) from None
    with app.test_request_context("/"):
        click.echo(Links(url).private_feed(token, ext))


@main.command(name="admin-token")
@click.option("--note", default="", help="What the token is for (shown by --list).")
@click.option("--list", "list_", is_flag=True, help="List admin tokens (ids, never the tokens) instead.")
@click.option("--revoke", metavar="ID", default=None, help="Revoke the admin token with this id instead.")
@instance_option
@pass_state
def admin_token(state: CliState, note: str, list_: bool, revoke: str | None) -> None:
    """Print a new token for curator writes (POST/PUT/DELETE /api/v1/articles).

    Each token has an id: `--list` shows them, `--revoke ID` stops one working at once
    (other admin tokens and paired clients are unaffected).
    """
    import datetime

    from .auth import mint_admin_token, revoke_admin_token

    app = state.app()
    if revoke is not None:
        if not revoke_admin_token(_store(app), revoke):
            raise click.ClickException(f"no admin token {revoke} (`topicfeed admin-token --list` shows them)")
        click.echo(f"revoked admin token {revoke}")
    elif list_:
        for t in _store(app).admin_tokens():
            created = datetime.datetime.fromtimestamp(t.created_ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
            click.echo(f"{t.id}\t{created}\t{'revoked' if t.revoked else 'active'}\t{t.note}")
    else:
        click.echo(mint_admin_token(_store(app), _master_keys(app), note))


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--base-url", default=None, help="URL the files will be served from (default: public_base_url).")
@instance_option
@pass_state
def export(state: CliState, out_dir: Path, base_url: str | None) -> None:
    """Write every feed, the OPML list, the index page and static API files to OUT_DIR."""
    from .export import export_site

    app = state.app()
    url = base_url or app.config["PUBLIC_BASE_URL"]
    if not url:
        raise click.UsageError("give --base-url or set public_base_url: feeds carry absolute links")
    count = export_site(app, out_dir, url)
    click.echo(f"wrote {count} files to {out_dir}")


@main.command(name="backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@instance_option
@pass_state
def backup_(state: CliState, file: Path) -> None:
    """Write config, keys, the SQLite index (online) and the curator's record files to FILE (.tar.gz, 0600)."""
    from .backup import BackupError, backup, configured_records_root

    try:
        summary = backup(state.path, _database_url(state.path), configured_records_root(state.path), file)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backed up {summary} to {file}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--records-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Content root whose _news/ gets the record files (default: the instance's records root, "
                   "the last of content_dirs, which must be the one they were backed up from).")
@click.option("--force", is_flag=True, help="Replace the keys and index of an instance that has them.")
@instance_option
@pass_state
def restore(state: CliState, file: Path, records_root: Path | None, force: bool) -> None:
    """Restore a backup made by `topicfeed backup` (stop the server first)."""
    from .backup import BackupError, restore as restore_backup

    try:
        summary = restore_backup(file, state.path, records_root, force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {summary} into {state.path}")

@main.group()
def writer() -> None:
    """The writer lease: which instance owns the write path of the database (README "Scaling out")."""


@writer.command("status")
@instance_option
@pass_state
def writer_status(state: CliState) -> None:
    """Name the writer that holds the lease (or held it last) and this instance's id."""
    from .writerlock import describe, instance_id

    lease = state.store().lease.current()
    with _one_line_errors(state.path):
        mine = instance_id(state.path)
    if lease is None or not lease.holder:
        click.echo(f"no writer has claimed this database yet; this instance is {mine}")
    else:
        click.echo(f"writer: {describe(lease)}; this instance is {mine}"
                   + (" (the writer)" if lease.holder == mine else ""))


@writer.command("take-over")
@instance_option
@pass_state
def writer_take_over(state: CliState) -> None:
    """Make this instance the writer now, whoever holds the lease: for a writer that is gone
    for good (its machine died) whose lease has not run out. The old writer, if it still runs,
    refuses writes from its next renewal on. Its record files are not here: restore them first."""
    from .writerlock import WriterLease, describe

    _writer_only(state.path, "take-overs of the writer lease")
    store = state.store()
    before = store.lease.current()
    with _one_line_errors(state.path):
        lease = WriterLease(store, state.path, state.settings()["WRITER_LEASE_SECONDS"]).claim(force=True)
    was = f" (was {describe(before)})" if before is not None and before.holder and before.holder != lease.holder else ""
    click.echo(f"this instance ({lease.holder}) holds the writer lease now{was}; start `topicfeed serve` here")


def _websub_pass(app: Flask) -> None:
    """After an import: distribute what changed now (the server's worker retries what fails later)."""
    from .websub_worker import Hub

    hub = Hub(app)
    if hub.enabled:
        hub.drain()


@main.group()
def websub() -> None:
    """The WebSub hub: subscriptions and deliveries."""


@websub.command("list")
@instance_option
@pass_state
def websub_list(state: CliState) -> None:
    """Subscriptions: id, lease expiry (UTC), signed or not, topic, callback."""
    import datetime

    for sub in _store(state.app()).websub.subscriptions():
        expires = datetime.datetime.fromtimestamp(sub.expires_ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{sub.id}\t{expires}\t{'signed' if sub.secret else 'unsigned'}\t{sub.topic}\t{sub.callback}")


@websub.command("remove")
@click.argument("subscription_id", type=click.IntRange(1, 2**63 - 1))  # ids are 64-bit database integers
@instance_option
@pass_state
def websub_remove(state: CliState, subscription_id: int) -> None:
    """End a subscription at once (no notice is sent) and drop its queued deliveries."""
    if not _store(state.app()).websub.remove(subscription_id):
        raise click.ClickException(f"no subscription {subscription_id} (see `topicfeed websub list`)")
    click.echo(f"removed subscription {subscription_id}")


@websub.command("deliver")
@instance_option
@pass_state
def websub_deliver(state: CliState) -> None:
    """Distribute changed feeds and run every due hub request now, then exit."""
    from .websub_worker import Hub

    hub = Hub(state.app())
    if not hub.enabled:
        raise click.ClickException("no WebSub hub: set public_base_url (and websub_hub for an external hub)")
    click.echo(f"ran {hub.drain()} hub request(s)")


def wsgi_app() -> Any:
    """WSGI entry point for HTTP servers (``server.serving``; workers call it in each process):
    the app of the instance named by ``TOPICFEED_INSTANCE`` (the one ``serve`` built, when the
    server runs in its process: one store pool per process), one access-log line per request,
    the writer lease renewed on a writer, and the WebSub worker in one process of the server
    (``server.serving.claim``)."""
    from . import create_app, front
    from .serving import SUPERVISOR_ENV
    from .settings import load_settings

    supervisor = int(os.environ.get(SUPERVISOR_ENV, "0"))
    if supervisor and supervisor != os.getpid():  # a worker process of granian or gunicorn
        from feeds.importer import die_with_parent

        die_with_parent(supervisor)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format=TEXT_FORMAT)
    logging.getLogger("topicfeed").setLevel(logging.INFO)  # whatever level the server gave the root logger
    instance = default_instance().resolve()
    configure_logging(load_settings(instance)["LOG_FORMAT"])
    app = _SERVED.get(os.getpid()) or create_app(None, instance, init=False)
    from .roles import writer_lease

    lease = writer_lease(app)
    if lease is not None:  # a writer: keep the lease while this process serves, end it on a clean stop
        lease.hold()
        lease.release_at_exit()
    from .serving import claim
    from .websub_worker import start_worker

    # every serving process builds the app here (one for waitress and cheroot, each worker of
    # granian and gunicorn); the WebSub worker runs in the one that holds the instance's lock
    claim(instance / "websub-worker.lock", app.config["WEBSUB_POLL_SECONDS"], lambda: start_worker(app))
    layer = front.of(app)
    layer.log_requests()
    return layer


if __name__ == "__main__":
    main()
