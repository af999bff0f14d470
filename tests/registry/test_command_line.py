"""The registry's command line loads what the command run needs: a roster command, run once per import or
approval of a file, does not pay for the web application's start-up."""

import subprocess
import sys

from tests.support import ROOT


def test_the_roster_commands_start_without_the_web_application_the_accounts_or_the_migrations() -> None:
    ran = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "registry", "roster", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in ran.stderr.splitlines() if "|" in line}
    assert "registry.roster.cli" in imported
    assert imported.isdisjoint({"registry.main", "registry.accounts.cli", "shared.service", "alembic"})
