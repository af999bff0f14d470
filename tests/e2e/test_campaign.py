"""The campaign replay (bench/campaign.py) at a tiny scale against the running system: every kind of flow
completes, the counts match the population and `canbao check` is clean; and its verdict fails when an
enrollment's payment is lost or a flow fails."""

import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from bench import campaign
from shared.crosscheck import Standing
from tests.support import SERVICES, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(__name__)]

KINDS = {"individual", "household", "subsidised_full", "subsidised_partial", "university"}


@pytest.fixture(scope="module")
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("campaign")
    running = Stack(workdir, {s: f"sqlite+aiosqlite:///{workdir / s}.db" for s in SERVICES})
    running.start()
    yield running
    assert running.stop() == 0, running.log()[-3000:]


async def replay(
    stack: Stack, population: campaign.Population, wait_s: float = 60.0
) -> tuple[campaign.Outcome, campaign.Verdict, str]:
    """The replay and its verdict, with what it prints."""
    printed = io.StringIO()
    console = Console(file=printed, width=150)
    outcome = await campaign.replay(
        population,
        stack.url("registry"),
        stack.url("collection"),
        concurrency=10,
        campaign_s=2.0,
        timeout_s=60.0,
        console=console,
    )
    found = await verdict(stack, population, outcome, wait_s)
    campaign.report(console, population, outcome, found, {}, (0.0, 0.0))
    return outcome, found, printed.getvalue()


async def verdict(
    stack: Stack, population: campaign.Population, outcome: campaign.Outcome, wait_s: float = 60.0
) -> campaign.Verdict:
    """The bench's verdict; a short wait_s where a difference is made on purpose (the check waits that long
    for it to go away)."""
    return await campaign.account(
        population, outcome, stack.url("registry"), stack.url("collection"), wait_s=wait_s
    )


def lose_a_confirmation(stack: Stack) -> None:
    """As if one payment's confirmation never reached the registry: the enrollment stands unpaid there."""
    database = Path(stack.database_urls["registry"].removeprefix("sqlite+aiosqlite:///"))
    with sqlite3.connect(database) as db:
        changed = db.execute(
            "UPDATE enrollments SET status = 'pending_payment', paid_fen = NULL, paid_at = NULL, "
            "payment_id = NULL, receipt_no = NULL "
            "WHERE id = (SELECT id FROM enrollments WHERE paid_fen > 0 ORDER BY id LIMIT 1)"
        ).rowcount
    assert changed == 1


async def test_a_tiny_campaign_completes_clean_and_its_verdict_catches_a_lost_or_failed_flow(
    sqlite_stack: Stack,
) -> None:
    population = campaign.generate(0.00001, seed=19)
    assert {u.kind for u in population.units} == KINDS
    assert population.residents == 55

    outcome, done, printed = await replay(sqlite_stack, population)

    assert outcome.failures == []
    assert {r.label.split("/")[0] for r in outcome.results} == KINDS
    assert sum(r.residents for r in outcome.results) == population.residents
    assert done.report.ok, done.report
    assert (done.listed, done.standings[Standing.PAID]) == (population.residents, population.residents)
    assert done.paid_fen == population.due_fen
    assert done.ok
    assert {t["result"] for t in outcome.transfers} == {"exact"}
    assert "flows/s" in printed
    assert "projected for the whole city" in printed
    assert "clean" in printed
    assert "match" in printed

    lose_a_confirmation(sqlite_stack)
    lost = await verdict(sqlite_stack, population, outcome, wait_s=1.0)
    assert not lost.report.ok
    assert lost.standings[Standing.PAID] == population.residents - 1
    assert not lost.counts_match
    assert not lost.ok

    # Someone already enrolled enrolls again: the flow fails, and so does the run.
    again = campaign.Population(population.scale, population.seed, [population.units[-1]])
    failed, judged, printed = await replay(sqlite_stack, again, wait_s=1.0)
    assert len(failed.failures) == 1
    assert "already_enrolled" in failed.failures[0][1]
    assert "1 flows failed" in printed
    assert judged.failures == 1
    assert not judged.ok
