"""`siyu`: run the server, manage links and keys, print QR codes, show stats, import CSV."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from siyu.cli import common
from siyu.cli import identity as identity_cli
from siyu.cli import imports as imports_cli
from siyu.cli import privacy as privacy_cli
from siyu.cli import profiles as profiles_cli
from siyu.cli import segments as segments_cli
from siyu.cli import sources as sources_cli
from siyu.cli import tags as tags_cli
from siyu.cli import value as value_cli
from siyu.cli.common import fail, friendly_errors

app = typer.Typer(
    help="Siyu (私域): short links, QR codes, 防红 and a customer data platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
links_app = typer.Typer(help="Create, list, show, update and archive short links.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (shown once, stored hashed).", no_args_is_help=True)
domains_app = typer.Typer(help="Short-link domains of a workspace.", no_args_is_help=True)
qr_app = typer.Typer(help="QR codes: print, save, decode.", no_args_is_help=True)
app.add_typer(links_app, name="links")
app.add_typer(keys_app, name="keys")
app.add_typer(domains_app, name="domains")
app.add_typer(qr_app, name="qr")
app.add_typer(sources_cli.app, name="sources")
app.add_typer(identity_cli.app, name="identity")
app.add_typer(imports_cli.app, name="import")
app.add_typer(privacy_cli.app, name="privacy")
app.add_typer(profiles_cli.app, name="profiles")
app.add_typer(tags_cli.app, name="tags")
app.add_typer(segments_cli.app, name="segments")
app.add_typer(value_cli.app, name="value")

WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="workspace slug (default: the first one)")


def _print_first_run(info) -> None:
    typer.secho("\nSiyu is ready. These secrets are shown once — keep them:", fg=typer.colors.GREEN, bold=True)
    typer.echo(f"  workspace : {info.workspace}   domain: {info.domain}")
    typer.echo(f"  sign in   : {info.email} / {info.password}")
    typer.echo(f"  API key   : {info.api_key}")
    typer.echo(f"  console   : http://{info.domain}/console/  (sign in with the account above)")
    typer.echo(f"  API docs  : http://{info.domain}/api/v1/docs")
    typer.echo("  try       : curl -i http://" + info.domain + "/coffee\n")


@app.command()
def init(demo: bool = typer.Option(True, help="create a few demo links")) -> None:
    """Create the database, the first workspace, an owner account and an API key."""
    from siyu.bootstrap import initialize

    info = initialize(common.settings(), common.database(), demo=demo, demo_clicks=demo)
    if info is None:
        typer.echo("Siyu is already initialised in " + str(common.settings().data_dir))
    else:
        _print_first_run(info)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port"),
    demo: bool = typer.Option(True, help="create demo links on first run"),
) -> None:
    """Run the server (redirects, API, console) with embedded SQLite + DuckDB under ./data/."""
    from granian import Granian
    from granian.constants import Interfaces

    from siyu.bootstrap import initialize

    settings = common.settings()
    os.environ.setdefault("SIYU_BASE_URL", settings.base_url)
    # Enrich clicks in a child process: the serving process's GIL stays with the redirects.
    os.environ.setdefault("SIYU_CLICK_ENRICHER", "process")
    info = initialize(settings, common.database(), demo=demo, demo_clicks=demo)
    if info is not None:
        _print_first_run(info)
    typer.echo(f"Serving on http://{host}:{port}  (data in {settings.data_dir}; API docs at /api/v1/docs)")
    server = Granian(
        "siyu.app:app_from_env",
        address=host,
        port=port,
        interface=Interfaces.RSGI,  # redirects answer natively; see siyu/rsgi.py for the rest
        factory=True,
        workers=1,  # one process owns the embedded event store (DuckDB allows one writer)
        websockets=False,
        log_access=False,
    )
    server.serve()


def _link_fields(**kw) -> dict:
    fields: dict = {}
    mapping = {
        "title": "title",
        "notes": "notes",
        "redirect_status": "redirect_status",
        "expires": "expires_at",
        "max_clicks": "max_clicks",
        "fallback": "fallback_url",
        "password": "password",
        "person": "person_ref",
    }
    for opt, field in mapping.items():
        if kw.get(opt) is not None:
            fields[field] = kw[opt]
    for opt, field in (
        ("anti_block", "anti_block_platforms"),
        ("allow", "allowed_platforms"),
        ("block", "blocked_platforms"),
        ("tag", "tags"),
    ):
        if kw.get(opt):
            fields[field] = [v.strip() for item in kw[opt] for v in item.split(",") if v.strip()]
    utm = {k: kw[f"utm_{k}"] for k in ("source", "medium", "campaign", "term", "content") if kw.get(f"utm_{k}")}
    if utm:
        fields["utm"] = utm
    if kw.get("no_forward_query"):
        fields["forward_query"] = False
    if kw.get("pass_visitor_id"):
        fields["pass_visitor_id"] = True
    if kw.get("rules"):
        try:
            fields["rules"] = json.loads(kw["rules"])
        except json.JSONDecodeError as exc:
            fail(f"rules: not valid JSON ({exc.msg})")
    return fields


@links_app.command("create")
def links_create(
    url: str = typer.Argument(..., help="destination URL (http/https)"),
    slug: str = typer.Option(None, help="custom slug"),
    domain: str = typer.Option(None, help="domain (default: the workspace's default)"),
    title: str = typer.Option(None),
    notes: str = typer.Option(None),
    tag: list[str] = typer.Option(None, help="tag (repeat, or comma-separated)"),
    redirect_status: int = typer.Option(None, help="301, 302, 307 or 308"),
    expires: str = typer.Option(None, help="ISO date-time after which the link expires"),
    max_clicks: int = typer.Option(None, help="expire after this many clicks"),
    fallback: str = typer.Option(None, help="where to send visitors once expired"),
    password: str = typer.Option(None, help="protect with a password"),
    anti_block: list[str] = typer.Option(None, help="防红: platforms that get a guidance page, e.g. wechat,qq"),
    allow: list[str] = typer.Option(None, help="allow only these platforms/devices, e.g. wechat or mobile"),
    block: list[str] = typer.Option(None, help="never open on these platforms/devices, e.g. qq"),
    utm_source: str = typer.Option(None),
    utm_medium: str = typer.Option(None),
    utm_campaign: str = typer.Option(None),
    utm_term: str = typer.Option(None),
    utm_content: str = typer.Option(None),
    no_forward_query: bool = typer.Option(False, help="do not pass the visitor's query string on"),
    pass_visitor_id: bool = typer.Option(
        False, help="append the visitor id (sy_vid=...) to the destination, for One ID on the landing page"
    ),
    rules: str = typer.Option(None, help='routing rules as JSON: [{"when": {"os": ["ios"]}, "url": "..."}]'),
    person: str = typer.Option(None, help="personal link: the member id its clicks belong to"),
    workspace: str = WorkspaceOpt,
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Create a short link."""
    from siyu.links import service

    fields = _link_fields(**locals())
    fields["destination_url"] = url
    if slug:
        fields["slug"] = slug
    if domain:
        fields["domain"] = domain
    settings = common.settings()
    with friendly_errors(), common.database().session() as session:
        ws = common.workspace_id(session, workspace)
        ctx = service.Context(ws, actor="cli", base_host=settings.base_host)
        link = service.create_link(session, ctx, fields)
        data = service.link_as_dict(link, _scheme())
    _show(data, as_json)


def _scheme() -> str:
    return "https" if common.settings().base_url.startswith("https") else "http"


def _show(data: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{data['short_url']}  →  {data['destination_url']}")
    for key in (
        "id",
        "title",
        "tags",
        "redirect_status",
        "expires_at",
        "max_clicks",
        "anti_block_platforms",
        "allowed_platforms",
        "blocked_platforms",
        "rules",
        "variants",
        "has_password",
        "archived",
    ):
        value = data.get(key)
        if value not in (None, "", [], False) or key == "id":
            typer.echo(f"  {key}: {value}")


@links_app.command("list")
def links_list(
    search: str = typer.Option("", help="text in slug, title or URL"),
    tag: str = typer.Option(None),
    domain: str = typer.Option(None),
    archived: bool = typer.Option(False, help="show archived links instead"),
    limit: int = typer.Option(50),
    offset: int = typer.Option(0),
    workspace: str = WorkspaceOpt,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List links, newest first."""
    from siyu.links import service

    with friendly_errors(), common.database().session() as session:
        ws = common.workspace_id(session, workspace)
        rows, total = service.list_links(
            session,
            ws,
            service.LinkQuery(search=search, tag=tag, domain=domain, archived=archived, limit=limit, offset=offset),
        )
        items = [service.link_as_dict(r, _scheme()) for r in rows]
    if as_json:
        typer.echo(json.dumps({"total": total, "links": items}, ensure_ascii=False, indent=2))
        return
    for it in items:
        typer.echo(f"{it['id']:>6}  {it['short_url']:<40}  {it['destination_url'][:60]}  {it['title'][:30]}")
    typer.echo(f"{len(items)} of {total} link(s)")


def _find(session, ws: int, ref: str):
    from siyu.errors import NotFound
    from siyu.links import service

    if ref.isascii() and ref.isdigit() and int(ref) < 2**31:
        try:
            return service.get_link(session, ws, int(ref))
        except NotFound:
            pass  # custom slugs may be all digits too, e.g. '2024'
    return service.get_link_by_slug(session, ws, ref)


@links_app.command("show")
def links_show(
    ref: str = typer.Argument(..., help="link id or slug"),
    workspace: str = WorkspaceOpt,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show one link."""
    from siyu.links import service

    with friendly_errors(), common.database().session() as session:
        data = service.link_as_dict(_find(session, common.workspace_id(session, workspace), ref), _scheme())
    _show(data, as_json)


@links_app.command("archive")
def links_archive(ref: str = typer.Argument(..., help="link id or slug"), workspace: str = WorkspaceOpt) -> None:
    """Archive a link: it stops redirecting; it and its clicks are kept."""
    from siyu.links import service

    with friendly_errors(), common.database().session() as session:
        ws = common.workspace_id(session, workspace)
        link = _find(session, ws, ref)
        service.archive_link(session, service.Context(ws, "cli", common.settings().base_host), link.id)
    typer.echo(f"archived {ref}")


@links_app.command("import")
def links_import(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with a destination_url column"),
    workspace: str = WorkspaceOpt,
    dry_run: bool = typer.Option(False, help="validate only"),
) -> None:
    """Import links from CSV: a report line per row; rows already imported are skipped."""
    from siyu.links.importer import import_csv

    with friendly_errors(), common.database().session() as session:
        ws = common.workspace_id(session, workspace)
        report = import_csv(
            session, ws, path.read_bytes(), common.settings().base_host, dry_run=dry_run, scheme=_scheme()
        )
    for row in report.rows:
        colour = {"created": typer.colors.GREEN, "skipped": typer.colors.YELLOW}.get(row.status, typer.colors.RED)
        typer.secho(f"row {row.row}: {row.status}" + (f" — {row.message}" if row.message else ""), fg=colour)
    typer.echo(report.summary())
    if report.errors:
        raise typer.Exit(1)


@qr_app.command("show")
def qr_show(
    ref: str = typer.Argument(..., help="link id or slug"),
    out: Path = typer.Option(None, "--out", "-o", help="write .png or .svg instead of printing"),
    size: int = typer.Option(512),
    border: int = typer.Option(4),
    dark: str = typer.Option("#000000"),
    light: str = typer.Option("#ffffff"),
    logo: Path = typer.Option(None, exists=True, dir_okay=False, help="centre logo image"),
    workspace: str = WorkspaceOpt,
) -> None:
    """Print a link's QR code to the terminal, or save it as PNG/SVG."""
    from siyu import qr
    from siyu.links import service

    with friendly_errors(), common.database().session() as session:
        link = _find(session, common.workspace_id(session, workspace), ref)
        data = service.short_url(link, _scheme()) + "/q"
    if out is None:
        typer.echo(qr.render_terminal(data))
        typer.echo(data)
        return
    try:
        opts = qr.QrOptions(size=size, border=border, dark=dark, light=light, logo=logo.read_bytes() if logo else None)
    except qr.QrError as exc:
        fail(f"{exc.field}: {exc.reason}")
    suffix = out.suffix.lower()
    if suffix not in (".png", ".svg"):
        fail("--out must end in .png or .svg")
    out.write_bytes(qr.render_png(data, opts) if suffix == ".png" else qr.render_svg(data, opts))
    typer.echo(f"wrote {out} ({data})")


@qr_app.command("decode")
def qr_decode(
    image: Path = typer.Argument(..., exists=True, dir_okay=False),
    create: bool = typer.Option(False, help="make a short link for every URL found"),
    workspace: str = WorkspaceOpt,
) -> None:
    """Decode the QR codes in an image (PNG/JPEG/WebP); optionally re-issue them as short links."""
    from siyu import qr
    from siyu.links import service

    try:
        codes = qr.decode_image(image.read_bytes())
    except qr.QrError as exc:
        fail(f"{exc.field}: {exc.reason}")
    for code in codes:
        typer.echo(f"{code.format}: {code.text}")
        url = qr.extract_url(code.text)
        if create and url:
            with friendly_errors(), common.database().session() as session:
                ws = common.workspace_id(session, workspace)
                link = service.create_link(
                    session,
                    service.Context(ws, "cli", common.settings().base_host),
                    {"destination_url": url, "title": f"QR: {image.name}"},
                )
                typer.echo(f"  → {service.short_url(link, _scheme())}")


@app.command()
def stats(
    ref: str = typer.Argument(None, help="link id or slug (default: the whole workspace)"),
    since: str = typer.Option(None),
    until: str = typer.Option(None),
    bucket: str = typer.Option("day", help="hour, day, week or month"),
    include_bots: bool = typer.Option(False),
    csv_out: Path = typer.Option(None, "--csv", help="export the clicks to this CSV file"),
    workspace: str = WorkspaceOpt,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Click statistics (bots excluded unless asked)."""
    from siyu.clicks import analytics
    from siyu.events.duckdb_store import DuckDBEventStore, StoreLocked
    from siyu.events.store import ClickFilter

    with friendly_errors():
        with common.database().session() as session:
            ws = common.workspace_id(session, workspace)
            link_id = _find(session, ws, ref).id if ref else None
        start, end = analytics.parse_range(since, until)
        events_path = common.settings().events_path
        try:
            # No event store yet means no click was ever recorded: report zeros, not "in use".
            exists = Path(events_path).exists()
            store = DuckDBEventStore(events_path, read_only=True) if exists else DuckDBEventStore(":memory:")
        except StoreLocked as exc:
            fail(f"{exc}; use GET /api/v1/analytics while the server runs")
        f = ClickFilter(ws, link_id, start, end, include_bots)
        try:
            if csv_out:
                with csv_out.open("w", encoding="utf-8", newline="") as fh:
                    for line in analytics.export_csv(store, f):
                        fh.write(line)
                typer.echo(f"wrote {csv_out}")
                return
            data = analytics.report(store, f, bucket)
        finally:
            store.close()
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    typer.echo(f"clicks: {data['clicks']}  unique visitors: {data['unique_visitors']}  bots: {data['bot_clicks']}")
    for point in data["timeseries"]:
        typer.echo(f"  {point['time'][:16]}  {point['clicks']:>7}")
    for dim, rows in data["breakdowns"].items():
        if rows:
            typer.echo(f"{dim}: " + ", ".join(f"{r['value'] or '-'} {r['clicks']}" for r in rows[:8]))


@keys_app.command("create")
def keys_create(
    name: str = typer.Argument(...),
    scope: list[str] = typer.Option(None, help="repeatable"),
    workspace: str = WorkspaceOpt,
) -> None:
    """Create an API key; the secret is printed once."""
    from siyu.workspaces import service

    with friendly_errors(), common.database().session() as session:
        issued = service.create_api_key(session, common.workspace_id(session, workspace), name, scope or None)
        typer.echo(f"{issued.secret}\n(id {issued.key.id}, scopes: {', '.join(issued.key.scopes)}; shown once)")


@keys_app.command("list")
def keys_list(workspace: str = WorkspaceOpt) -> None:
    from sqlalchemy import select

    from siyu.workspaces.models import ApiKey

    with common.database().session() as session:
        ws = common.workspace_id(session, workspace)
        for k in session.scalars(select(ApiKey).where(ApiKey.workspace_id == ws).order_by(ApiKey.id)):
            state = "revoked" if k.revoked_at else "active"
            typer.echo(f"{k.id:>4}  {k.prefix}…  {k.name:<20} {state:<8} {','.join(k.scopes)}")


@keys_app.command("revoke")
def keys_revoke(key_id: int, workspace: str = WorkspaceOpt) -> None:
    from siyu.workspaces import service

    with friendly_errors(), common.database().session() as session:
        service.revoke_api_key(session, common.workspace_id(session, workspace), key_id)
    typer.echo(f"revoked key {key_id}")


@domains_app.command("add")
def domains_add(hostname: str, default: bool = typer.Option(False), workspace: str = WorkspaceOpt) -> None:
    from siyu.workspaces import service

    with friendly_errors(), common.database().session() as session:
        d = service.add_domain(session, common.workspace_id(session, workspace), hostname, default)
        typer.echo(f"added {d.hostname}" + (" (default)" if d.is_default else ""))


@domains_app.command("list")
def domains_list(workspace: str = WorkspaceOpt) -> None:
    from siyu.workspaces import service

    with common.database().session() as session:
        for d in service.list_domains(session, common.workspace_id(session, workspace)):
            typer.echo(d.hostname + ("  (default)" if d.is_default else ""))


if __name__ == "__main__":
    app()
