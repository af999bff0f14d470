from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from registry.accounts import repository, service
from registry.accounts.dependencies import SessionsDep, client_address
from registry.accounts.errors import (
    ACCOUNT_ERRORS,
    AccountAlreadyDisabled,
    AccountExists,
    AccountNotDisabled,
    AccountNotFound,
    LastAdministrator,
    NotASignInSession,
    SignInFailed,
    TooManySignInFailures,
)
from registry.accounts.models import SessionKind
from registry.accounts.schemas import (
    AccountChange,
    AccountCreate,
    AccountDeactivation,
    AccountList,
    AccountOut,
    SessionToken,
    SignInRequest,
)
from shared.auth import Access, CurrentAccess, Role, allow
from shared.db import DbSession
from shared.errors import error_responses

# Administrators manage accounts; auditors read them.
accounts = APIRouter(prefix="/v1/accounts", tags=["accounts"], dependencies=[allow()])


def _touch(access: Access, account_id: str) -> None:
    access.touch(None, f"account:{account_id}")


@accounts.get("", summary="Staff, department, tax, audit and administrator accounts")
async def list_accounts(
    session: DbSession,
    role: Annotated[Role | None, Query()] = None,
    enabled: Annotated[bool | None, Query()] = None,
) -> AccountList:
    return AccountList(
        items=[AccountOut.of(a) for a in await repository.listing(session, role=role, enabled=enabled)]
    )


@accounts.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Open an account (开设账号) with its role, regions and categories",
    responses=error_responses(*ACCOUNT_ERRORS, AccountExists),
)
async def create_account(
    body: AccountCreate, session: DbSession, sessions: SessionsDep, access: CurrentAccess
) -> AccountOut:
    account = await service.create(session, sessions, body, by=access.principal.subject)
    _touch(access, account.id)
    return AccountOut.of(account)


@accounts.get("/{account_id}", summary="One account", responses=error_responses(AccountNotFound))
async def get_account(account_id: str, session: DbSession) -> AccountOut:
    return AccountOut.of(await service.get(session, account_id))


@accounts.patch(
    "/{account_id}",
    summary="Change an account: name, role, regions, categories, password (a new password ends its sessions)",
    responses=error_responses(*ACCOUNT_ERRORS, AccountNotFound, LastAdministrator),
)
async def change_account(
    account_id: str,
    body: AccountChange,
    session: DbSession,
    sessions: SessionsDep,
    access: CurrentAccess,
) -> AccountOut:
    account = await service.change(session, sessions, account_id, body, by=access.principal.subject)
    _touch(access, account.id)
    return AccountOut.of(account)


@accounts.post(
    "/{account_id}/deactivation",
    summary="Disable an account (停用): its sessions end at once",
    responses=error_responses(AccountNotFound, AccountAlreadyDisabled, LastAdministrator),
)
async def deactivate_account(
    account_id: str,
    body: AccountDeactivation,
    session: DbSession,
    sessions: SessionsDep,
    access: CurrentAccess,
) -> AccountOut:
    account = await service.deactivate(
        session, sessions, account_id, body.reason, by=access.principal.subject
    )
    _touch(access, account.id)
    return AccountOut.of(account)


@accounts.post(
    "/{account_id}/reactivation",
    summary="Enable a disabled account again (启用)",
    responses=error_responses(AccountNotFound, AccountNotDisabled),
)
async def reactivate_account(
    account_id: str, session: DbSession, sessions: SessionsDep, access: CurrentAccess
) -> AccountOut:
    account = await service.reactivate(session, sessions, account_id, by=access.principal.subject)
    _touch(access, account.id)
    return AccountOut.of(account)


sessions_router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


@sessions_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Sign in (登录) with an account name and password: a short-lived bearer token for both services",
    description="No token needed. A wrong name or password, and a disabled account, answer alike "
    "(`sign_in_failed`); after REGISTRY_SIGN_IN_FAILURES_ALLOWED failures for one name, or "
    "REGISTRY_SIGN_IN_ADDRESS_FAILURES_ALLOWED from one address, within REGISTRY_SIGN_IN_FAILURE_WINDOW_S, "
    "sign-in is refused with 429 and `Retry-After`. The token lives REGISTRY_SESSION_TOKEN_TTL_S: get the "
    "next from `POST /v1/sessions/current/token` while the session lasts.",
    responses=error_responses(SignInFailed, TooManySignInFailures),
    response_model=SessionToken,
)
async def sign_in(
    body: SignInRequest, request: Request, session: DbSession, sessions: SessionsDep
) -> SessionToken | JSONResponse:
    outcome = await service.sign_in(
        session,
        sessions,
        username=body.username,
        password=body.password,
        address=client_address(request),
        kind=SessionKind.API,
        route="/v1/sessions",
    )
    if not isinstance(outcome, service.SignedIn):
        # Answered, not raised: the request's transaction commits the failure's count and audit record.
        return JSONResponse(
            outcome.body().model_dump(), status_code=outcome.status_code, headers=outcome.response_headers
        )
    await session.flush()
    token, expires_at = sessions.token_for(outcome.account, outcome.record)
    return SessionToken(
        session_id=outcome.record.id,
        access_token=token,
        expires_at=expires_at,
        session_expires_at=outcome.record.expires_at,
        account=AccountOut.of(outcome.account),
    )


@sessions_router.post(
    "/current/token",
    summary="A fresh token for the caller's sign-in session, while it lasts",
    responses=error_responses(NotASignInSession),
)
async def refresh_token(session: DbSession, sessions: SessionsDep, access: CurrentAccess) -> SessionToken:
    account, record = await service.current(session, access.principal)
    token, expires_at = sessions.token_for(account, record)
    return SessionToken(
        session_id=record.id,
        access_token=token,
        expires_at=expires_at,
        session_expires_at=record.expires_at,
        account=AccountOut.of(account),
    )


@sessions_router.post(
    "/current/end",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign out (退出登录): the caller's session ends; its tokens and cookie stop working",
    description="At the registry at once; collection, which keeps no sessions, accepts a token already "
    "issued until it expires (REGISTRY_SESSION_TOKEN_TTL_S).",
    responses=error_responses(NotASignInSession),
)
async def sign_out(session: DbSession, sessions: SessionsDep, access: CurrentAccess) -> Response:
    await service.sign_out(session, sessions, access.principal, route="/v1/sessions/current/end")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
