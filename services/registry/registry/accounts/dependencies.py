"""What the accounts' API and pages, and other domains' pages, take from a request: the session store, the
caller's address, and the signed-in viewer a page greets."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from registry.accounts.service import Sessions
from shared.auth import Access, Role


def get_sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.session_store
    return sessions


SessionsDep = Annotated[Sessions, Depends(get_sessions)]


def client_address(request: Request) -> str:
    """The address sign-in failures are counted for (uvicorn puts a trusted proxy's X-Forwarded-For here)."""
    return request.client.host if request.client else "unknown"


ROLE_NAMES = {
    Role.STAFF: "经办人员",
    Role.DEPARTMENT: "部门",
    Role.TAX_OFFICER: "税务人员",
    Role.AUDITOR: "审计人员",
    Role.ADMIN: "管理员",
}


@dataclass(frozen=True)
class Viewer:
    """Who a page is shown to, with what its sign-out form needs."""

    name: str
    role_name: str
    csrf_token: str


def viewer_of(request: Request, access: Access) -> Viewer | None:
    """The signed-in caller of a page (none for a bearer token without a session)."""
    sessions: Sessions | None = getattr(request.app.state, "session_store", None)
    principal = access.principal
    if sessions is None or principal.session_id is None:
        return None
    return Viewer(
        name=principal.name or principal.subject,
        role_name=ROLE_NAMES.get(principal.role, principal.role.value),
        csrf_token=sessions.csrf_token(principal.session_id),
    )
