"""`canbao` starts fast: `--help` and `token` import neither the services nor the web and database stacks
(issue 17: `canbao token` took about 2 s). Commands that need the services import them when they run."""

import asyncio
import json
import os
import resource
import subprocess
import sys

import pytest

import shared.auth as auth
import shared.tokens as tokens
from canbao.harness import CANBAO, ROOT
from registry.settings import RegistrySettings

HEAVY = ("fastapi", "sqlalchemy", "registry", "collection", "httpx", "aiokafka", "openpyxl", "shared.auth")
FAST_S = 0.5  # "well under half a second": CPU time, so that a busy test machine does not decide it


def _loaded_by(*args: str) -> list[str]:
    """The heavy modules `canbao ARGS` has imported once it ran."""
    script = (
        "import sys, json\n"
        "from canbao.cli import app\n"
        f"try:\n    app({list(args)!r})\nexcept SystemExit:\n    pass\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted({m for m in sys.modules if m.split('.')[0] in heavy or m in heavy})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    found: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize(
    "args", [("--help",), ("token", "--role", "staff", "--subject", "zhang.wei", "--region", "340104")]
)
def test_help_and_token_import_no_service(args: tuple[str, ...]) -> None:
    assert _loaded_by(*args) == []


def _cpu_seconds(*args: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([str(CANBAO), *args], capture_output=True, check=True, cwd=ROOT, env=os.environ)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.mark.parametrize("args", [("--help",), ("token", "--role", "admin", "--subject", "me")])
def test_help_and_token_take_well_under_half_a_second(args: tuple[str, ...]) -> None:
    best = min(_cpu_seconds(*args) for _ in range(3))
    assert best < FAST_S, f"canbao {' '.join(args)} took {best:.2f} s of CPU"


def test_the_light_token_module_is_the_one_the_services_check() -> None:
    """shared.tokens repeats shared.auth's token definitions without FastAPI; they must stay the same."""
    assert {r.name: r.value for r in tokens.Role} == {r.name: r.value for r in auth.Role}
    assert tokens.TokenClaims.model_json_schema() == auth.TokenClaims.model_json_schema()
    for name in ("ALGORITHM", "DEV_KEY", "DEV_KEY_ID", "DEFAULT_MAX_TOKEN_LIFETIME"):
        assert getattr(tokens, name) == getattr(auth, name), name
    issued = subprocess.run(
        [
            str(CANBAO),
            "token",
            "--role",
            "department",
            "--subject",
            "minzheng",
            "--region",
            "340104",
            "--category",
            "minimum_living",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    settings = RegistrySettings(environment="test", database_url="sqlite+aiosqlite://")
    principal = asyncio.run(auth.verify_bearer(f"Bearer {issued}", settings))
    assert (principal.role, principal.regions, principal.categories) == (
        auth.Role.DEPARTMENT,
        frozenset({"340104"}),
        frozenset({"minimum_living"}),
    )
