"""`python -m registry roster …`: import large rosters straight into the registry's database, with progress.

The same intake, validation and application as the HTTP API; for files too large to send over HTTP, and for
operators resuming an import that was interrupted (run the same command again: it continues)."""

import asyncio
import gc
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.context import Registry
from registry.exclusion.service import RegistryExclusionList
from registry.policy.book import SHIPPED_POLICIES, PolicyBook
from registry.roster import service
from registry.roster.models import RosterKind, RosterUpload, UploadStatus
from registry.roster.worker import RosterWorker
from registry.settings import RegistrySettings
from shared.clock import Clock
from shared.db import create_engine, create_sessionmaker
from shared.errors import DomainError
from shared.tabular import configure, count_lines

cli = typer.Typer(help="Department rosters (花名册)", no_args_is_help=True)
console = Console()
# Past a chunk's objects (see _work): the collector runs after _QUIET_CHUNKS chunks instead (chunk_done).
_YOUNG_OBJECTS = 1_000_000
_QUIET_CHUNKS = 4
# Of chunk_done's collections, every _ALL_GENERATIONS_EVERY-th goes over every generation: the cycles of
# chunks still in flight survive a collection into the next generation, which no automatic one reaches here.
_ALL_GENERATIONS_EVERY = 4


def _registry(settings: RegistrySettings) -> Registry:
    directories = [SHIPPED_POLICIES] + ([settings.policy_dir] if settings.policy_dir else [])
    return Registry(PolicyBook.load(*directories), RegistryExclusionList(), Clock(settings.clock_start))


async def _import(path: Path, request: service.UploadRequest, total: int) -> RosterUpload:
    settings = RegistrySettings()
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    registry = _registry(settings)
    try:
        stream = await asyncio.to_thread(path.open, "rb")
        async with sessionmaker() as session, session.begin():
            with stream:
                upload, created = await service.receive(
                    session, registry, settings.roster_dir, request, stream, settings.roster_max_bytes
                )
        console.print(f"upload {upload.id}: {'new' if created else 'the same file was sent before'}")
        await _work(sessionmaker, registry, "validating", total, lambda u: u.rows_read)
        async with sessionmaker() as session:
            return await service.get(session, upload.id)
    finally:
        await engine.dispose()


async def _work(
    sessionmaker: async_sessionmaker[AsyncSession],
    registry: Registry,
    label: str,
    total: int,
    done: Callable[[RosterUpload], int],
) -> None:
    settings = RegistrySettings()
    configure(settings.file_limits)
    # What the program holds by now (its modules, the policies) lives as long as it does: the collector need
    # not go over it again and again while a million rows pass through (a third of the CPU otherwise).
    gc.freeze()
    # An applying chunk makes some sixty container objects a row (300,000 a chunk of 5,000), alive until the
    # chunk is written and then freed by their reference counts: a pass over them finds nothing to free.
    # At one pass every 50,000 objects, applying spent about a tenth of its CPU in the collector
    # (`gc.callbacks`, 300,000 rows); past a chunk's worth, collections come from chunk_done alone.
    gc.set_threshold(_YOUNG_OBJECTS, *gc.get_threshold()[1:])
    worker = RosterWorker(
        lambda: sessionmaker,
        lambda: registry,
        settings.roster_chunk_rows,
        owner=f"cli@{socket.gethostname()}",
        applied_at_once=settings.roster_chunks_applied_at_once,
    )
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(label, total=total)

        seen, quiet, collected = _collections(), 0, 0

        def chunk_done(upload: RosterUpload) -> None:
            nonlocal seen, quiet, collected
            progress.update(task, completed=done(upload))
            # A chunk's statements are reference cycles that hold its lookups' values (thousands of ID
            # numbers): chunks that leave few objects alive (validating's) let a hundred chunks and more go by
            # between collections, and their cycles piled up (350 MB at a million rows). After _QUIET_CHUNKS
            # chunks without one, one runs. The young generation alone would move the cycles of the chunks
            # still being applied into the older ones, never collected while the threshold keeps automatic
            # collections away: every few runs, all generations are gone over.
            quiet = quiet + 1 if _collections() == seen else 0
            if quiet == _QUIET_CHUNKS:
                collected += 1
                gc.collect(2 if collected % _ALL_GENERATIONS_EVERY == 0 else 1)
                quiet = 0
            seen = _collections()

        await worker.run_until_idle(progress=chunk_done)


def _collections() -> int:
    """How many times the collector went over the youngest objects."""
    collections: int = gc.get_stats()[0]["collections"]
    return collections


async def _approve(upload_id: str, by: str, note: str | None) -> RosterUpload:
    settings = RegistrySettings()
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    registry = _registry(settings)
    try:
        async with sessionmaker() as session, session.begin():
            upload = await service.review(session, registry, upload_id, by=by, approve=True, note=note)
        await _work(sessionmaker, registry, "applying", upload.rows_accepted, lambda u: u.rows_applied)
        async with sessionmaker() as session:
            return await service.get(session, upload_id)
    finally:
        await engine.dispose()


@cli.command("import")
def import_roster(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    kind: Annotated[RosterKind, typer.Option()],
    region: Annotated[str, typer.Option(help="Region code, e.g. 341823")],
    year: Annotated[int, typer.Option(help="Coverage year")],
    department: Annotated[str, typer.Option(help="The sending department, e.g. 县民政局")],
    by: Annotated[str, typer.Option(help="Who imports it")],
    category: Annotated[str | None, typer.Option(help="Category code or name, unless the file says")] = None,
) -> None:
    """Store and validate a roster file; it then waits for approval (`roster approve`)."""
    request = service.UploadRequest(kind, region, year, category, department, by, file.name)
    configure(RegistrySettings().file_limits)  # as the service reads files from outside
    try:
        upload = asyncio.run(_import(file, request, count_lines(file)))
    except DomainError as exc:
        console.print(f"[red]refused[/red] {exc.code}: {exc.zh} / {exc.en} {exc.details or ''}")
        raise typer.Exit(2) from exc
    console.print(
        f"{upload.status.value}: {upload.rows_read} rows, {upload.rows_accepted} accepted, "
        f"{upload.rows_rejected} rejected{f' ({upload.failure})' if upload.failure else ''}"
    )
    if upload.status is UploadStatus.PENDING:
        console.print(
            "[yellow]another worker holds this upload[/yellow]; it goes on there, or run `roster resume`"
        )
        raise typer.Exit(3)
    raise typer.Exit(1 if upload.status is UploadStatus.REJECTED else 0)


@cli.command("approve")
def approve_roster(
    upload_id: str,
    by: Annotated[str, typer.Option(help="The reviewing staff member")],
    note: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Approve a validated upload and apply its accepted rows."""
    try:
        upload = asyncio.run(_approve(upload_id, by, note))
    except DomainError as exc:
        console.print(f"[red]refused[/red] {exc.code}: {exc.zh} / {exc.en}")
        raise typer.Exit(2) from exc
    console.print(f"{upload.status.value}: {upload.rows_applied} rows applied")


async def _resume() -> None:
    settings = RegistrySettings()
    engine = create_engine(settings.database_url)
    try:
        await _work(create_sessionmaker(engine), _registry(settings), "resuming", 0, lambda u: u.rows_read)
    finally:
        await engine.dispose()


@cli.command("resume")
def resume() -> None:
    """Finish uploads left pending or applying by an interrupted import (run on the host that was importing,
    or wait a minute for its lease to lapse)."""
    asyncio.run(_resume())
    console.print("nothing left to validate or apply")
