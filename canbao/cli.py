"""`canbao`: the operator's command line.

It starts fast: only what every command needs is imported here (typer, and shared.tokens for `token`); each
command imports the services, the database layer or the HTTP client when it runs
(tests/test_cli_startup.py keeps `--help` and `token` well under half a second).
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from shared.tokens import (
    DEFAULT_MAX_TOKEN_LIFETIME,
    DEV_KEY,
    DEV_KEY_ID,
    Role,
    TokenClaims,
    dev_token,
    issue_token,
)

if TYPE_CHECKING:
    from rich.console import Console

    from canbao import check as crosscheck
    from shared.crosscheck import EnrollmentStanding

# Plain help and tracebacks: rich's formatting alone would take longer to load than the rest of the command.
app = typer.Typer(
    help="Canbao (参保) operator commands",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _console() -> Console:
    from rich.console import Console

    return Console()


@app.command()
def run(
    broker: bool = typer.Option(
        True, help="Start the embedded broker; --no-broker uses *_KAFKA_BOOTSTRAP_SERVERS"
    ),
) -> None:
    """Start the broker, migrate both databases, start both services; Ctrl-C stops everything."""
    from canbao import stack

    raise typer.Exit(stack.run(with_broker=broker))


@app.command()
def broker() -> None:
    """Start only the embedded Kafka-protocol broker (CANBAO_BROKER_HOST/PORT) until Ctrl-C."""
    from canbao import stack

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
    from shared.events import COLLECTION_PAYMENTS, EVENT_TYPES, REGISTRY_ENROLLMENTS, Envelope

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
def roles(
    check: bool = typer.Option(
        False, "--check", help="Only compare: exit 1 if the file differs from the code"
    ),
    out: Path = typer.Option(None, help="Where to write the table (default docs/roles.md)"),
) -> None:
    """Write the roles × endpoints table (docs/roles.md) from the services' routes."""
    from canbao.roles import DOC, render

    target = out or DOC
    table = render()
    if check:
        same = target.exists() and target.read_text(encoding="utf-8") == table
        typer.echo(f"{target}: {'up to date' if same else 'differs from the code; run `canbao roles`'}")
        raise typer.Exit(0 if same else 1)
    target.write_text(table, encoding="utf-8")
    typer.echo(f"wrote {target}")


@app.command()
def token(
    role: Role = typer.Option(..., help="resident, staff, department, tax_officer, auditor or admin"),
    subject: str = typer.Option(..., "--subject", help="Who the token is for (their account name)"),
    region: list[str] = typer.Option([], help="A region code the holder works in (staff, department)"),
    category: list[str] = typer.Option([], help="A subsidy category or roster kind (department)"),
    id_number: str | None = typer.Option(None, help="The resident's own ID number (resident)"),
    name: str | None = typer.Option(None, help="The holder's name"),
    hours: float = typer.Option(
        8.0,
        min=0.01,
        max=DEFAULT_MAX_TOKEN_LIFETIME.total_seconds() / 3600,
        help="How long the token is valid; at most what the services accept by default "
        "(<PREFIX>_AUTH_MAX_TOKEN_LIFETIME_S, 24 hours)",
    ),
) -> None:
    """Issue a bearer token signed with CANBAO_AUTH_KEY (key id CANBAO_AUTH_KEY_ID), or with the development
    key that `make run` accepts when no key is set. Production services refuse the development key."""
    from pydantic import ValidationError

    try:
        claims = TokenClaims(
            sub=subject, role=role, regions=region, categories=category, id_number=id_number, name=name
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc
    # CANBAO_AUTH_KEY and CANBAO_AUTH_KEY_ID: the key `canbao token` signs with (read plainly: no settings
    # library to load for one command).
    secret = os.environ.get("CANBAO_AUTH_KEY") or DEV_KEY
    key_id = os.environ.get("CANBAO_AUTH_KEY_ID") or DEV_KEY_ID
    typer.echo(issue_token(claims, secret=secret, key_id=key_id, ttl=timedelta(hours=hours)))


@app.command()
def pay(
    order_id: str = typer.Argument(..., help="The payment order to pay (its order_id)"),
    collection_url: str = typer.Option("http://127.0.0.1:8002", envvar="CANBAO_COLLECTION_URL"),
    token: str | None = typer.Option(
        None,
        envvar="CANBAO_TOKEN",
        help="A bearer token that may read the order; default: an administrator's, signed with the "
        "development key (make run)",
    ),
) -> None:
    """Sandbox payment provider: play the order's channel (WeChat, Alipay, the provincial app, a bank) and
    send collection the signed notification that the channel took the order's amount, signed with the channel
    secret of COLLECTION_CHANNEL_SECRETS (the development secrets by default). Refused in production."""
    import asyncio

    from canbao import sandbox
    from collection.settings import CollectionSettings

    settings = CollectionSettings()
    if not settings.payment_sandbox:
        _console().print(
            "[red]the payment sandbox is off (COLLECTION_PAYMENT_SANDBOX; never in production)[/red]"
        )
        raise typer.Exit(2)
    bearer = token or dev_token(Role.ADMIN, sub="canbao-pay")
    status, body = asyncio.run(sandbox.pay(collection_url, bearer, settings, order_id))
    typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
    raise typer.Exit(0 if status == 200 else 1)


@app.command()
def check(
    year: int = typer.Option(..., min=2000, max=2100, help="Coverage year, e.g. 2024"),
    region: list[str] = typer.Option(..., help="Region code (6 digits), e.g. 340104; repeat for several"),
    registry_url: str = typer.Option("http://127.0.0.1:8001", envvar="CANBAO_REGISTRY_URL"),
    collection_url: str = typer.Option("http://127.0.0.1:8002", envvar="CANBAO_COLLECTION_URL"),
    repair: bool = typer.Option(True, help="Publish lost events again; --no-repair only reports"),
    wait: float = typer.Option(30.0, help="Seconds to wait for events in flight and for repairs to land"),
    operator: str = typer.Option("canbao-check", help="Who runs the check (kept in the services' logs)"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
    token: str | None = typer.Option(
        None,
        envvar="CANBAO_TOKEN",
        help="An administrator's bearer token; default: one signed with the development key (make run)",
    ),
) -> None:
    """核对: every enrollment of the regions' coverage year stands alike in both services (billed, paid by the
    same payment, ended alike), collection's ledger balances with every payment on one bill, and no event is
    left unpublished or dead-lettered. Lost events are published again. Exit 0 when all holds, 1 otherwise."""
    import asyncio

    from canbao import check as crosscheck

    bearer = token or dev_token(Role.ADMIN, sub=operator)
    report = asyncio.run(
        crosscheck.run(
            registry_url,
            collection_url,
            region,
            year,
            repair=repair,
            wait_s=wait,
            requested_by=operator,
            token=bearer,
        )
    )
    if as_json:
        typer.echo(json.dumps(_report_json(report), ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def repair(
    registry_url: str = typer.Option("http://127.0.0.1:8001", envvar="CANBAO_REGISTRY_URL"),
    collection_url: str = typer.Option("http://127.0.0.1:8002", envvar="CANBAO_COLLECTION_URL"),
    every: float = typer.Option(60.0, min=0.5, envvar="CANBAO_REPAIR_EVERY_S", help="Seconds between rounds"),
    grace: float = typer.Option(
        30.0,
        min=0.5,
        envvar="CANBAO_REPAIR_GRACE_S",
        help="How long both services may differ before their events go out again (events in flight)",
    ),
    lookback: float = typer.Option(
        86400.0, min=0, envvar="CANBAO_REPAIR_LOOKBACK_S", help="How far back the first round looks"
    ),
    overlap: float = typer.Option(
        300.0,
        min=0,
        envvar="CANBAO_REPAIR_OVERLAP_S",
        help="How far back every round reads again (long transactions, clocks a little off)",
    ),
    rounds: int | None = typer.Option(
        None, min=1, help="Stop after this many rounds (default: run until stopped)"
    ),
    token: str | None = typer.Option(
        None,
        envvar="CANBAO_TOKEN",
        help="An administrator's bearer token; default: one signed with the development key (make run)",
    ),
) -> None:
    """The repair job (`canbao run` and compose start it): every round compares what changed in both services
    and has them publish again the events of any enrollment that has stood differently for longer than the
    grace period, so a flow whose events the broker lost resumes with nobody at the keyboard."""
    import asyncio

    from canbao import repair as repairing
    from shared.logging import configure_logging

    configure_logging()
    bearer = token or dev_token(Role.ADMIN, sub="canbao-repair")
    run_rounds = repairing.run(
        registry_url,
        collection_url,
        bearer,
        every_s=every,
        grace_s=grace,
        lookback_s=lookback,
        overlap_s=overlap,
        rounds=rounds,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_rounds)


def _difference_json(d: crosscheck.Difference) -> dict[str, object]:
    return {
        "enrollment_id": d.enrollment_id,
        "kind": d.kind.value,
        "registry": d.registry.model_dump(mode="json") if d.registry else None,
        "collection": d.collection.model_dump(mode="json") if d.collection else None,
    }


def _report_json(report: crosscheck.CheckReport) -> dict[str, object]:
    return {
        "region_codes": report.region_codes,
        "coverage_year": report.coverage_year,
        "registry": {"enrollments": report.registry.listed, "backlog": report.registry.backlog},
        "collection": {"bills": report.collection.listed, "backlog": report.collection.backlog},
        "differences": [_difference_json(d) for d in report.differences],
        "republished": report.republished,
        "repaired": report.repaired,
        "remaining": [_difference_json(d) for d in report.remaining],
        "ledger": report.ledger,
        "ok": report.ok,
    }


def _standing(s: EnrollmentStanding | None) -> str:
    if s is None:
        return ""
    return f"{s.standing} due {s.amount_due} v{s.price_version} paid {s.paid} {s.payment_id or ''}"


def _print_report(report: crosscheck.CheckReport) -> None:
    from rich.table import Table

    console = _console()
    console.print(
        f"核对 {','.join(report.region_codes)} {report.coverage_year}: registry {report.registry.listed} "
        f"enrollments, collection {report.collection.listed} bills; {len(report.differences)} differences, "
        f"{len(report.republished)} republished, {len(report.repaired)} repaired, "
        f"{len(report.remaining)} remaining"
    )
    if report.differences:
        table = Table("enrollment", "difference", "registry", "collection", "repaired")
        left = {d.enrollment_id for d in report.remaining}
        for d in report.differences:
            repaired = "" if d.enrollment_id in left else "yes"
            table.add_row(
                d.enrollment_id, d.kind.value, _standing(d.registry), _standing(d.collection), repaired
            )
        console.print(table)
    for name, side in (("registry", report.registry), ("collection", report.collection)):
        console.print(
            f"{name}: {side.backlog.get('unpublished')} events unpublished, "
            f"{side.backlog.get('dead_letters_open')} dead letters open"
        )
    console.print(f"ledger check: {'ok' if report.ledger.get('ok') else report.ledger}")
    console.print("[green]consistent[/green]" if report.ok else "[red]not consistent[/red]")


accounts = typer.Typer(
    help="Staff, department, tax, audit and administrator accounts (the registry's /v1/accounts): "
    "an administrator's token (--token, CANBAO_TOKEN; default: the development key's, for make run)",
    no_args_is_help=True,
)
app.add_typer(accounts, name="accounts")

_REGISTRY_URL = typer.Option("http://127.0.0.1:8001", "--registry-url", envvar="CANBAO_REGISTRY_URL")
_ADMIN_TOKEN = typer.Option(
    None, "--token", envvar="CANBAO_TOKEN", help="An administrator's bearer token (default: make run's)"
)
_PASSWORD_STDIN = typer.Option(
    False, "--password-stdin", help="Read the password from standard input instead of asking for it"
)


def _password(from_stdin: bool) -> str:
    """Asked twice without echo, or read from standard input: never an argument, which `ps` would show."""
    import sys

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return password


def _accounts_call(registry_url: str, token: str | None, call: str, *args: object) -> None:
    """Run one call of canbao.accounts.Accounts; print the answer as JSON, exit 1 when refused."""
    import httpx

    from canbao.accounts import Accounts, AccountsApiError

    bearer = token or dev_token(Role.ADMIN, sub="canbao-accounts")
    try:
        with Accounts(registry_url, bearer) as client:
            result = getattr(client, call)(*args)
    except AccountsApiError as exc:
        typer.echo(json.dumps(exc.body, ensure_ascii=False, indent=2), err=True)
        raise typer.Exit(1) from exc
    except httpx.HTTPError as exc:
        typer.echo(f"the registry at {registry_url} did not answer: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))


@accounts.command("list")
def accounts_list(
    role: Role | None = typer.Option(None, help="Only this role"),
    enabled: bool | None = typer.Option(None, "--enabled/--disabled", help="Only enabled or disabled ones"),
    registry_url: str = _REGISTRY_URL,
    token: str | None = _ADMIN_TOKEN,
) -> None:
    """List the accounts."""
    _accounts_call(registry_url, token, "listing", role.value if role else None, enabled)


@accounts.command("create")
def accounts_create(
    username: str = typer.Argument(..., help="What they sign in with"),
    name: str = typer.Option(..., "--name", help="Their name, as pages show it"),
    role: Role = typer.Option(..., help="staff, department, tax_officer, auditor or admin"),
    region: list[str] = typer.Option([], help="A region code they work in (staff, department); repeat"),
    category: list[str] = typer.Option([], help="A subsidy category (department); repeat"),
    password_stdin: bool = _PASSWORD_STDIN,
    registry_url: str = _REGISTRY_URL,
    token: str | None = _ADMIN_TOKEN,
) -> None:
    """Open an account; its password is asked for (at least 12 characters, not the account name)."""
    body = {
        "username": username,
        "display_name": name,
        "role": role.value,
        "regions": region,
        "categories": category,
        "password": _password(password_stdin),
    }
    _accounts_call(registry_url, token, "create", body)


@accounts.command("change")
def accounts_change(
    username: str = typer.Argument(...),
    name: str | None = typer.Option(None, "--name"),
    role: Role | None = typer.Option(None),
    region: list[str] | None = typer.Option(None, help="Replaces the regions; repeat"),
    category: list[str] | None = typer.Option(None, help="Replaces the categories; repeat"),
    no_regions: bool = typer.Option(False, "--no-regions", help="Clear the regions (another role)"),
    no_categories: bool = typer.Option(False, "--no-categories", help="Clear the categories"),
    password: bool = typer.Option(
        False, "--password", help="Set a new password (asked for); ends its sessions"
    ),
    password_stdin: bool = _PASSWORD_STDIN,
    registry_url: str = _REGISTRY_URL,
    token: str | None = _ADMIN_TOKEN,
) -> None:
    """Change an account's name, role, regions, categories or password."""
    body: dict[str, object] = {}
    if name is not None:
        body["display_name"] = name
    if role is not None:
        body["role"] = role.value
    if region or no_regions:
        body["regions"] = [] if no_regions else region
    if category or no_categories:
        body["categories"] = [] if no_categories else category
    if password or password_stdin:
        body["password"] = _password(password_stdin)
    _accounts_call(registry_url, token, "change", username, body)


@accounts.command("disable")
def accounts_disable(
    username: str = typer.Argument(...),
    reason: str = typer.Option(..., help="Why (kept with the account)"),
    registry_url: str = _REGISTRY_URL,
    token: str | None = _ADMIN_TOKEN,
) -> None:
    """Disable an account: its sessions end at once."""
    _accounts_call(registry_url, token, "disable", username, reason)


@accounts.command("enable")
def accounts_enable(
    username: str = typer.Argument(...),
    registry_url: str = _REGISTRY_URL,
    token: str | None = _ADMIN_TOKEN,
) -> None:
    """Enable a disabled account again."""
    _accounts_call(registry_url, token, "enable", username)


@accounts.command("create-admin")
def accounts_create_admin(
    username: str = typer.Argument(..., help="The administrator's account name"),
    name: str = typer.Option("系统管理员", "--name"),
    password_stdin: bool = _PASSWORD_STDIN,
) -> None:
    """Create an administrator account straight in the registry's database (REGISTRY_DATABASE_URL and the
    other REGISTRY_* settings), for when no administrator can sign in: a first start without
    REGISTRY_BOOTSTRAP_ADMIN_PASSWORD, or every administrator's password lost."""
    from pydantic import ValidationError

    from registry.accounts.cli import create_admin
    from registry.settings import RegistrySettings
    from shared.errors import DomainError

    password = _password(password_stdin)
    try:
        account = create_admin(RegistrySettings(), username, name, password)
    except (DomainError, ValidationError) as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created the administrator account {account.username!r} ({account.id})")
