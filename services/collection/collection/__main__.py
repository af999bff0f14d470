"""`python -m collection serve|migrate`."""

from pathlib import Path

import typer

from collection.main import create_app
from collection.settings import CollectionSettings
from shared.service import migrate as run_migrations
from shared.service import serve as run_server

MIGRATIONS = Path(__file__).parent / "migrations"

cli = typer.Typer(help="Canbao collection service (税务局)", no_args_is_help=True)


@cli.command()
def serve() -> None:
    """Start the HTTP API, the outbox relay and the enrollment consumer."""
    settings = CollectionSettings()
    run_server(create_app(settings) if settings.workers == 1 else "collection.main:create_app", settings)


@cli.command()
def migrate() -> None:
    """Apply the database migrations (alembic upgrade head)."""
    run_migrations(MIGRATIONS, CollectionSettings().database_url)


if __name__ == "__main__":
    cli()
