"""The roster worker: judges every row of a pending upload (pending -> validated) and applies an approved one
(applying -> applied), in committed chunks. Progress is in the database, so a killed process resumes where
its last committed chunk ended, and a lease keeps two workers off one upload."""

import asyncio
import uuid
from collections import Counter, deque
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from registry.context import Registry
from registry.enrollment.errors import AlreadyEnrolled
from registry.metrics import ROSTER_ROWS_APPLIED, ROSTER_ROWS_JUDGED
from registry.roster import repository
from registry.roster.apply import apply_alone, apply_rows
from registry.roster.errors import RosterFileInvalid
from registry.roster.models import RosterKind, RosterUpload, RowStatus, UploadStatus
from registry.roster.reading import Sheet, open_sheet
from registry.roster.service import get
from registry.roster.validation import (
    REQUIRED,
    SUBSIDY_KINDS,
    Judged,
    Registered,
    RowRules,
    Verdict,
    against_registered,
    find_category,
    namesake_keys,
)
from registry.settings import ROSTER_CHUNKS_APPLIED_AT_ONCE
from shared.clock import utc_now
from shared.db import statistics_stale_after, unique_violation
from shared.polling import Poller, until_idle

LEASE = timedelta(seconds=60)
IDLE_WAIT_S = 2.0  # how often an idle worker looks for uploads; an upload or approval wakes it at once
_JUDGED_BETWEEN_YIELDS = 128  # rows judged between two turns of the event loop (a few milliseconds)
# Validated chunks stored at once: there the judging process is the limit, not the database.
_STORED_AT_ONCE = 2

Progress = Callable[[RosterUpload], None]
_STATUS_TEXT = {status: status.value for status in RowStatus}


class RosterWorker:
    """Validates and applies uploads in the background; `run_until_idle` does the same on demand."""

    def __init__(
        self,
        sessionmaker: Callable[[], async_sessionmaker[AsyncSession]],
        registry: Callable[[], Registry],
        chunk_rows: int,
        *,
        owner: str | None = None,
        applied_at_once: int = ROSTER_CHUNKS_APPLIED_AT_ONCE,
    ):
        self._sessionmaker = sessionmaker
        self._registry = registry
        self._chunk_rows = chunk_rows
        self._applied_at_once = applied_at_once
        # A dead worker's lease lapses after LEASE; a worker under the same owner name takes it at once.
        self._owner = owner or f"worker-{uuid.uuid4()}"
        self._poller = Poller(self.run_once, interval_s=IDLE_WAIT_S, failure_event="roster_worker_failed")

    def wake(self) -> None:
        self._poller.wake()

    async def run(self) -> None:
        await self._poller.run()

    async def run_until_idle(self, *, progress: Progress | None = None) -> None:
        await until_idle(lambda: self.run_once(progress=progress))

    async def run_once(self, *, progress: Progress | None = None) -> bool:
        upload_id = await self._claim()
        if upload_id is None:
            return False
        async with self._sessionmaker()() as session:
            status = (await get(session, upload_id)).status
        if status is UploadStatus.PENDING:
            await self._validate(upload_id, progress)
        else:
            await self._apply(upload_id, progress)
        return True

    async def _claim(self) -> str | None:
        now = utc_now()
        async with self._sessionmaker()() as session, session.begin():
            for upload_id in await repository.claimable(session, self._owner, now):
                if await repository.take_lease(session, upload_id, self._owner, now, now + LEASE):
                    return upload_id
        return None

    async def _renew(self, session: AsyncSession, upload_id: str) -> None:
        now = utc_now()
        if not await repository.take_lease(session, upload_id, self._owner, now, now + LEASE):
            raise RuntimeError(f"lost the lease on roster upload {upload_id}")

    async def _validate(self, upload_id: str, progress: Progress | None) -> None:
        registry = self._registry()
        async with self._sessionmaker()() as session:
            upload = await get(session, upload_id)
        policy = registry.policies.by_id(upload.policy_id)
        try:
            sheet = open_sheet(Path(upload.stored_path), upload.filename, REQUIRED[upload.kind])
        except (RosterFileInvalid, OSError) as exc:
            await self._fail(upload_id, str(getattr(exc, "details", None) or exc))
            return
        category = policy.category(upload.category_code) if upload.category_code else None
        if category is None and sheet.sheet_category:
            category = find_category(policy, sheet.sheet_category)
        row_rules = RowRules(
            upload.kind, policy, upload.region_code, category, sheet.headers, registry.clock.today()
        )
        try:
            batch = await self._judge_file(upload_id, upload.position, sheet, row_rules, progress)
        except RosterFileInvalid as exc:
            await self._fail(upload_id, str(exc.details))
            return
        upload = await self._judge_chunk(upload_id, row_rules, batch, last=True)
        self._report(upload, progress)

    async def _judge_file(
        self, upload_id: str, position: int, sheet: Sheet, row_rules: RowRules, progress: Progress | None
    ) -> list[tuple[int, Judged]]:
        """Judge the rows after line `position` and store them chunk by chunk; the last chunk's rows are left
        to the caller. The chunks before are stored while this one is read and judged: the rules need no
        database. On PostgreSQL two chunks are stored at once, over two connections, so that the database
        writes one while the other's facts are looked up; each commits after the one before it (the upload's
        position and counts advance in file order, and a failure of one undoes the one after it), and the
        ID numbers of the one before, not yet committed, are passed along for the duplicate check."""
        lanes = self._lanes(_STORED_AT_ONCE)
        storing: deque[tuple[asyncio.Task[RosterUpload], dict[str, int]]] = deque()
        batch: list[tuple[int, Judged]] = []
        chunks = 0
        try:
            for row_no, cells in sheet.rows:
                if row_no <= position or not "".join(cells).strip():
                    continue
                batch.append((row_no, row_rules.judge(sheet.values(cells))))
                if len(batch) % _JUDGED_BETWEEN_YIELDS == 0:
                    await asyncio.sleep(0)  # the chunks being stored get their next round trips going
                if len(batch) >= self._chunk_rows:
                    if len(storing) == lanes:
                        self._report(await storing.popleft()[0], progress)
                    if statistics_stale_after(chunks):
                        # In a transaction of its own: two chunks' ANALYZEs would wait on each other's lock.
                        await self._refresh_statistics(applying=False)
                    before, uncommitted = storing[-1] if storing else (None, {})
                    task = asyncio.create_task(
                        self._judge_chunk(upload_id, row_rules, batch, before=before, uncommitted=uncommitted)
                    )
                    storing.append((task, _first_rows(batch)))
                    batch, chunks = [], chunks + 1
            while storing:
                self._report(await storing.popleft()[0], progress)
            return batch
        finally:
            # A bad line further on: the chunks before it stay stored, as they were.
            await asyncio.gather(*(task for task, _ in storing), return_exceptions=True)

    async def _judge_chunk(
        self,
        upload_id: str,
        row_rules: RowRules,
        judged: list[tuple[int, Judged]],
        *,
        last: bool = False,
        before: "asyncio.Task[RosterUpload] | None" = None,
        uncommitted: dict[str, int] | None = None,
    ) -> RosterUpload:
        """Judge one chunk of rows against the registry, store them and move the upload's position past them,
        in one transaction. With a chunk `before` still being stored, its rows' first row by ID number are
        `uncommitted`, and this one's lease and counts are written once it committed (they are the upload's
        row, which it updates too)."""
        async with self._sessionmaker()() as session, session.begin():
            if before is None:
                await self._renew(session, upload_id)
            upload = await get(session, upload_id)
            registered = await _registered(session, upload, judged, uncommitted or {})
            verdicts = against_registered(row_rules, judged, registered)
            await _record(session, upload_id, verdicts)
            if before is not None:
                await before
                await self._renew(session, upload_id)
                upload = await get(session, upload_id)  # its counts as the chunk before left them
            _count(upload, verdicts)
            if judged:
                upload.position = judged[-1][0]
            if last:
                upload.status = UploadStatus.VALIDATED
                upload.validated_at = self._registry().clock.now()
                upload.lease_owner, upload.lease_until = None, None
        # Counted once the chunk's transaction committed.
        for verdict, count in Counter(v.status.value for v in verdicts).items():
            ROSTER_ROWS_JUDGED.labels(upload.kind.value, verdict).inc(count)
        return upload

    async def _fail(self, upload_id: str, reason: str) -> None:
        async with self._sessionmaker()() as session, session.begin():
            upload = await get(session, upload_id)
            upload.status, upload.failure = UploadStatus.REJECTED, reason
            upload.lease_owner, upload.lease_until = None, None

    async def _apply(self, upload_id: str, progress: Progress | None) -> None:
        """Apply the accepted rows chunk by chunk. On PostgreSQL several chunks are under way at once (three
        unless configured), so that one chunk's rules run while the database writes the others' rows; each
        waits for the one before it to commit before it commits (so the upload's counts advance in file
        order), and a failure of one undoes the ones after it."""
        lanes = self._lanes(self._applied_at_once)
        ahead: deque[asyncio.Task[RosterUpload]] = deque()
        after_row: int | None = 0
        chunks = 0
        try:
            while after_row is not None:
                if len(ahead) == lanes:
                    self._report(await ahead.popleft(), progress)
                if statistics_stale_after(chunks):
                    await self._refresh_statistics(applying=True)
                chunks += 1
                read: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
                before = ahead[-1] if ahead else None
                ahead.append(
                    asyncio.create_task(self._apply_chunk(upload_id, after_row, read, before, lanes > 1))
                )
                after_row = await read
            while ahead:
                self._report(await ahead.popleft(), progress)
        finally:
            for task in ahead:
                task.cancel()
            await asyncio.gather(*ahead, return_exceptions=True)

    async def _apply_chunk(
        self,
        upload_id: str,
        after_row: int,
        read: "asyncio.Future[int | None]",
        before: "asyncio.Task[RosterUpload] | None",
        pipelined: bool,
    ) -> RosterUpload:
        """One chunk in one transaction: its rows (`read` gets the last one's number, or None for the last
        chunk), applied, and the upload's counts, once the chunk before it committed. The lease is renewed
        last when chunks overlap (the next one would wait on the upload's row), else first: on SQLite that
        write is what opens the transaction, so that the savepoint below nests inside it."""
        registry = self._registry()
        try:
            async with self._sessionmaker()() as session, session.begin():
                if not pipelined:
                    await self._renew(session, upload_id)
                upload = await get(session, upload_id)
                chunk = await repository.accepted_after(session, upload_id, after_row, self._chunk_rows)
                last = len(chunk) < self._chunk_rows
                read.set_result(None if last else chunk[-1].row_no)
                outcomes = await _applied(session, registry, upload, chunk)
                await repository.mark_applied(
                    session, upload_id, [(row.row_no, o) for row, o in zip(chunk, outcomes, strict=True)]
                )
                if before is not None:
                    await before
                if pipelined:
                    await self._renew(session, upload_id)
                upload = await get(session, upload_id)
                upload.rows_applied += len(chunk)
                if last:
                    upload.status = UploadStatus.APPLIED
                    upload.applied_at = registry.clock.now()
                    upload.lease_owner, upload.lease_until = None, None
        except BaseException as exc:
            if not read.done():
                read.set_exception(exc)
            raise
        ROSTER_ROWS_APPLIED.labels(upload.kind.value).inc(len(chunk))
        return upload

    @staticmethod
    def _report(upload: RosterUpload, progress: Progress | None) -> None:
        if progress:
            progress(upload)

    def _lanes(self, at_once: int) -> int:
        """`at_once` chunks on PostgreSQL, over as many connections of the pool; one at a time on SQLite (one
        writer at a time; a reader's snapshot cannot become a writer's) or on one connection (a test's)."""
        bind = self._sessionmaker().kw.get("bind")
        return at_once if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql" else 1

    async def _refresh_statistics(self, *, applying: bool) -> None:
        async with self._sessionmaker()() as session, session.begin():
            await repository.refresh_statistics(session, applying=applying)


async def _applied(
    session: AsyncSession, registry: Registry, upload: RosterUpload, chunk: list[repository.Accepted]
) -> list[str]:
    """What applying each row of the chunk did, the chunk at once; if someone enrolled or registered one of
    its people meanwhile (a unique index refused a row), row by row, so that only that row says so."""
    try:
        async with session.begin_nested():
            return await apply_rows(session, registry, upload, chunk)
    except (AlreadyEnrolled, IntegrityError) as exc:
        if isinstance(exc, IntegrityError) and not unique_violation(exc):
            raise
    return [await apply_alone(session, registry, upload, row) for row in chunk]


async def _registered(
    session: AsyncSession, upload: RosterUpload, judged: list[tuple[int, Judged]], uncommitted: dict[str, int]
) -> Registered:
    """What the registry holds about a chunk's ID numbers: earlier rows of this upload (stored, or
    `uncommitted` by the chunk before), registered names and namesakes, categories held this year, and (for
    subsidy rosters) the employee-insurance lists."""
    ids = sorted({j.id_number for _, j in judged if j.id_number})
    people = await repository.known_people(session, ids)
    number_of = {person_id: number for number, (person_id, _) in people.items()}
    held = (
        await repository.held_categories(session, list(number_of), upload.coverage_year)
        if upload.kind is RosterKind.SUBSIDY_REDUCTION
        else set()
    )
    return Registered(
        earlier=_earliest(await repository.earlier_rows(session, upload.id, ids), uncommitted),
        names={number: name for number, (_, name) in people.items()},
        held={(number_of[person_id], code) for person_id, code in held},
        namesakes=await repository.namesakes(session, namesake_keys(judged)),
        insured=await repository.employee_insured(session, ids, upload.coverage_year)
        if upload.kind in SUBSIDY_KINDS
        else {},
    )


def _earliest(stored: dict[str, int], uncommitted: dict[str, int]) -> dict[str, int]:
    """The first earlier row of each ID number, among the stored rows and those not committed yet."""
    earliest = dict(stored)
    for number, row_no in uncommitted.items():
        if row_no < earliest.get(number, row_no + 1):
            earliest[number] = row_no
    return earliest


def _first_rows(judged: list[tuple[int, Judged]]) -> dict[str, int]:
    """The first row of the chunk giving each ID number."""
    first: dict[str, int] = {}
    for row_no, row in judged:
        if row.id_number and row.id_number not in first:
            first[row.id_number] = row_no
    return first


async def _record(session: AsyncSession, upload_id: str, verdicts: list[Verdict]) -> None:
    """Store a chunk's rows as judged."""
    await repository.insert_rows(
        session,
        [
            (upload_id, v.row_no, _STATUS_TEXT[v.status], v.id_number, v.values, v.problems, v.evidence)
            for v in verdicts
        ],
    )


def _count(upload: RosterUpload, verdicts: list[Verdict]) -> None:
    """Count a chunk's rows on the upload."""
    upload.rows_read += len(verdicts)
    upload.rows_rejected += sum(1 for v in verdicts if v.status is RowStatus.REJECTED)
    upload.rows_held += sum(1 for v in verdicts if v.status is RowStatus.HELD)
    upload.rows_accepted += sum(1 for v in verdicts if v.status is RowStatus.ACCEPTED)
