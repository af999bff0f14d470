"""`canbao`: the operator's command line."""

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import typer
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.table import Table

from canbao import check as crosscheck
from canbao import stack
from shared.auth import DEV_KEY, DEV_KEY_ID, Role, TokenClaims, dev_token, issue_token
from shared.events import COLLECTION_PAYMENTS, EVENT_TYPES, REGISTRY_ENROLLMENTS, Envelope

app = typer.Typer(help="Canbao (参保) operator commands", no_args_is_help=True)
console = Console()


@app.command()
def run(
    broker: bool = typer.Option(
        True, help="Start the embedded broker; --no-broker uses *_KAFKA_BOOTSTRAP_SERVERS"
    ),
) -> None:
    """Start the broker, migrate both databases, start both services; Ctrl-C stops everything."""
    raise typer.Exit(stack.run(with_broker=broker))


@app.command()
def broker() -> None:
    """Start only the embedded Kafka-protocol broker (CANBAO_BROKER_HOST/PORT) until Ctrl-C."""
    settings = stack.StackSettings()
    process = stack.start_broker(settings.broker_host, settings.broker_port, None)
    typer.echo(f"broker listening on {settings.bootstrap}")
    try:
        process.wait()
    except KeyboardInterrupt:
        stack.stop(process, "broker")


@app.command()
def schemas(
    out: Path = typer.Option(Path("docs/events"), help="Directory for the JSON Schema files"),
) -> None:
    """Export the JSON Schema of the event envelope and of every event payload."""
    out.mkdir(parents=True, exist_ok=True)
    documents = {"envelope": Envelope.model_json_schema()}
    for event_type, model in EVENT_TYPES.items():
        documents[event_type] = model.model_json_schema()
    for name, schema in documents.items():
        (out / f"{name}.schema.json").write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
    typer.echo(
        f"wrote {len(documents)} schemas to {out} (topics: {REGISTRY_ENROLLMENTS}, {COLLECTION_PAYMENTS})"
    )


@app.command()
def token(
    role: Role = typer.Option(..., help="resident, staff, department, tax_officer, auditor or admin"),
    subject: str = typer.Option(..., "--subject", help="Who the token is for (their account name)"),
    region: list[str] = typer.Option([], help="A region code the holder works in (staff, department)"),
    category: list[str] = typer.Option([], help="A subsidy category or roster kind (department)"),
    id_number: str | None = typer.Option(None, help="The resident's own ID number (resident)"),
    name: str | None = typer.Option(None, help="The holder's name"),
    hours: float = typer.Option(8.0, min=0.01, max=24 * 30, help="How long the token is valid"),
) -> None:
    """Issue a bearer token signed with CANBAO_AUTH_KEY (key id CANBAO_AUTH_KEY_ID), or with the development
    key that `make run` accepts when no key is set. Production services refuse the development key."""
    settings = TokenSettings()
    try:
        claims = TokenClaims(
            sub=subject, role=role, regions=region, categories=category, id_number=id_number, name=name
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc
    secret = settings.auth_key.get_secret_value() if settings.auth_key else DEV_KEY
    typer.echo(issue_token(claims, secret=secret, key_id=settings.auth_key_id, ttl=timedelta(hours=hours)))


class TokenSettings(BaseSettings):
    """CANBAO_AUTH_KEY and CANBAO_AUTH_KEY_ID: the key `canbao token` signs with."""

    model_config = SettingsConfigDict(env_prefix="CANBAO_")

    auth_key: SecretStr | None = None
    auth_key_id: str = DEV_KEY_ID


@app.command()
def check(
    region: str = typer.Option(..., help="Region code (6 digits), e.g. 340104"),
    day: datetime = typer.Option(..., formats=["%Y-%m-%d"], help="Business day (Beijing), e.g. 2023-10-08"),
    registry_url: str = typer.Option("http://127.0.0.1:8001", envvar="CANBAO_REGISTRY_URL"),
    collection_url: str = typer.Option("http://127.0.0.1:8002", envvar="CANBAO_COLLECTION_URL"),
    repair: bool = typer.Option(True, help="Publish lost confirmations again; --no-repair only reports"),
    wait: float = typer.Option(30.0, help="Seconds to wait for the registry to apply what was republished"),
    operator: str = typer.Option("canbao-check", help="Who runs the check (kept in collection's log)"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
    token: str | None = typer.Option(
        None,
        envvar="CANBAO_TOKEN",
        help="An administrator's bearer token; default: one signed with the development key (make run)",
    ),
) -> None:
    """核对: compare what the registry holds as paid with what collection recorded for a region and day;
    repair lost confirmations. Exit 0 when the two agree (after repair), 1 when differences remain."""
    bearer = token or dev_token(Role.ADMIN, sub=operator)
    report = asyncio.run(
        crosscheck.run(registry_url, collection_url, region, day.date(), repair, wait, operator, bearer)
    )
    if as_json:
        typer.echo(json.dumps(_report_json(report), ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def _report_json(report: crosscheck.CheckReport) -> dict[str, object]:
    return {
        "region_code": report.region_code,
        "day": report.day.isoformat(),
        "registry_paid": report.registry_paid,
        "collection_paid": report.collection_paid,
        "differences": [
            {
                "enrollment_id": d.enrollment_id,
                "kind": d.kind.value,
                "registry": d.registry.model_dump(mode="json") if d.registry else None,
                "collection": d.collection.model_dump(mode="json") if d.collection else None,
            }
            for d in report.differences
        ],
        "republished": report.republished,
        "repaired": report.repaired,
        "ok": report.ok,
    }


def _print_report(report: crosscheck.CheckReport) -> None:
    console.print(
        f"核对 {report.region_code} {report.day.isoformat()}: registry holds {report.registry_paid} paid, "
        f"collection recorded {report.collection_paid}; {len(report.differences)} differences, "
        f"{len(report.republished)} republished, {len(report.repaired)} repaired"
    )
    if report.differences:
        table = Table("enrollment", "difference", "registry", "collection", "repaired")
        for d in report.differences:
            table.add_row(
                d.enrollment_id,
                d.kind.value,
                f"{d.registry.payment_id} {d.registry.amount}" if d.registry else "",
                f"{d.collection.payment_id} {d.collection.amount}" if d.collection else "",
                "yes" if d.enrollment_id in report.repaired else "",
            )
        console.print(table)
    console.print("[green]consistent[/green]" if report.ok else "[red]differences remain[/red]")
