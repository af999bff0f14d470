"""`python -m registry serve|migrate|check-policy`."""

from pathlib import Path

import typer

from registry.roster.cli import cli as roster_cli
from registry.settings import RegistrySettings

# Each command imports what only it needs when it runs: the web application (registry.main), the accounts and
# the migrations took about 0.45 s of CPU (a third of the start-up) of every roster command, which needs none
# of them.

MIGRATIONS = Path(__file__).parent / "migrations"

cli = typer.Typer(help="Canbao registry service (医保局)", no_args_is_help=True)
cli.add_typer(roster_cli, name="roster")


@cli.command()
def serve() -> None:
    """Start the HTTP API, the outbox relay and the payment consumer."""
    from registry.main import create_app
    from shared.service import serve as run_server

    settings = RegistrySettings()
    run_server(create_app(settings) if settings.workers == 1 else "registry.main:create_app", settings)


@cli.command()
def migrate() -> None:
    """Apply the database migrations (alembic upgrade head); at first start, create the first administrator
    account (REGISTRY_BOOTSTRAP_ADMIN_USERNAME, REGISTRY_BOOTSTRAP_ADMIN_PASSWORD)."""
    from registry.accounts.cli import first_admin
    from shared.errors import DomainError
    from shared.service import migrate as run_migrations

    settings = RegistrySettings()
    run_migrations(MIGRATIONS, settings.database_url)
    try:
        created = first_admin(settings)
    except DomainError as exc:
        typer.echo(f"the first administrator account was not created: {exc.en} ({exc.zh})", err=True)
        raise typer.Exit(1) from exc
    if created is not None:
        typer.echo(f"created the first administrator account {created.username!r}")


@cli.command("check-policy")
def check_policy(files: list[Path]) -> None:
    """Validate policy files without starting the service."""
    from registry.policy.book import load_policy_file
    from registry.policy.errors import PolicyFileInvalid

    failed = False
    for path in files:
        try:
            policy = load_policy_file(path)
        except PolicyFileInvalid as exc:
            typer.echo(f"INVALID {exc}", err=True)
            failed = True
        else:
            typer.echo(
                f"ok {path}: {policy.policy_id} ({len(policy.regions)} regions, {policy.coverage_year})"
            )
    raise typer.Exit(1 if failed else 0)


if __name__ == "__main__":
    cli()
