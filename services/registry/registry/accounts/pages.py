"""The browser's way in (Chinese pages): the sign-in page (登录), signing out (退出登录), and pages that send
a browser without a session there.

The sign-in form is protected against cross-site posts by a double-submit token (a random value in an
HttpOnly cookie scoped to /sign-in and in the form, which must match); signing in sets the session cookie
(HttpOnly, SameSite=Strict, Secure in production) holding the session's secret. Signing out is a form post
carrying the session's CSRF token (shared.auth's SessionStore derives it from the session id), and ends the
session in the database, not only in the browser. These routes are pages, not API: they are left out of the
OpenAPI document (API clients sign in with `POST /v1/sessions`).
"""

import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from registry.accounts import service
from registry.accounts.dependencies import SessionsDep, client_address
from registry.accounts.errors import SignInFailed
from registry.accounts.models import SessionKind
from registry.accounts.service import Sessions
from shared.auth import SESSION_COOKIE, Principal, Unauthenticated
from shared.db import DbSession
from shared.errors import DomainError

pages = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

SIGN_IN_CSRF_COOKIE = "canbao_sign_in_csrf"
DEFAULT_NEXT = "/dashboard"
# Pages are not framed by other sites, post only to this service, and are not kept by caches.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}
EXPIRED_FORM = "页面已过期，请重新输入用户名和密码"


def _safe_next(target: str) -> str:
    """Where to go after signing in: a path on this service only (never another site)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")) or len(target) > 512:
        return DEFAULT_NEXT
    return target


def _cookie_options(sessions: Sessions) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "secure": sessions.settings.cookie_secure}


def _form(
    request: Request,
    sessions: Sessions,
    *,
    next_path: str,
    username: str = "",
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    context = {"csrf_token": token, "next": next_path, "username": username, "error": error, "notice": notice}
    response = templates.TemplateResponse(
        request, "sign_in.html", context, status_code=status_code, headers=PAGE_HEADERS | (headers or {})
    )
    response.set_cookie(
        SIGN_IN_CSRF_COOKIE, token, path="/sign-in", max_age=3600, **_cookie_options(sessions)
    )
    return response


@pages.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(
    request: Request, sessions: SessionsDep, next: str = DEFAULT_NEXT, signed_out: bool = False
) -> HTMLResponse:
    return _form(request, sessions, next_path=_safe_next(next), notice="您已退出登录" if signed_out else None)


@pages.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    session: DbSession,
    sessions: SessionsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = DEFAULT_NEXT,
) -> Response:
    next_path = _safe_next(next)
    shown_name = username.strip()[:64]
    expected = request.cookies.get(SIGN_IN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected.encode(), csrf_token.encode()):
        return _form(
            request, sessions, next_path=next_path, username=shown_name, error=EXPIRED_FORM, status_code=403
        )
    outcome: service.SignedIn | DomainError
    if not username.strip() or not password or len(username) > 64 or len(password) > 128:
        outcome = SignInFailed()  # nothing any account could match: not counted
    else:
        outcome = await service.sign_in(
            session,
            sessions,
            username=username,
            password=password,
            address=client_address(request),
            kind=SessionKind.BROWSER,
            route="/sign-in",
        )
    if not isinstance(outcome, service.SignedIn):
        # Answered, not raised: the request's transaction commits the failure's count and audit record.
        error = outcome.zh
        retry = (outcome.details or {}).get("retry_after_s")
        if retry is not None:
            error += f"（约 {max(1, round(retry / 60))} 分钟后可再试）"
        return _form(
            request,
            sessions,
            next_path=next_path,
            username=shown_name,
            error=error,
            status_code=outcome.status_code,
            headers=outcome.response_headers,
        )
    response = RedirectResponse(next_path, status_code=303, headers={"Cache-Control": "no-store"})
    assert outcome.secret is not None
    response.set_cookie(
        SESSION_COOKIE,
        outcome.secret,
        path="/",
        max_age=sessions.settings.session_max_age_s,
        **_cookie_options(sessions),
    )
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path="/sign-in", **_cookie_options(sessions))
    return response


@pages.post("/sign-out")
async def sign_out(
    request: Request, session: DbSession, sessions: SessionsDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    principal: Principal | None = None
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        try:
            principal = await sessions.principal_of_cookie(secret)
        except Unauthenticated:
            principal = None  # already over: only the browser's cookie is left to clear
    if principal is not None and principal.session_id is not None:
        expected = sessions.csrf_token(principal.session_id)
        if not secrets.compare_digest(expected.encode(), csrf_token.encode()):
            return templates.TemplateResponse(
                request,
                "notice.html",
                {"message": "退出失败：页面已过期，请返回看板刷新页面后再退出"},
                status_code=403,
                headers=PAGE_HEADERS,
            )
        await service.sign_out(session, sessions, principal, route="/sign-out")
    response = RedirectResponse(
        "/sign-in?signed_out=true", status_code=303, headers={"Cache-Control": "no-store"}
    )
    response.delete_cookie(SESSION_COOKIE, path="/", **_cookie_options(sessions))
    return response


def send_browsers_to_sign_in(app: FastAPI) -> None:
    """A browser asking for a page without a (live) session is sent to the sign-in page, and back after;
    API clients still get 401 in the error format."""

    async def on_unauthenticated(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Unauthenticated)
        route = request.scope.get("route")
        is_page = getattr(route, "response_class", None) is HTMLResponse
        if request.method == "GET" and is_page and "text/html" in request.headers.get("accept", ""):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/sign-in?{urlencode({'next': target})}", status_code=303)
        return JSONResponse(
            exc.body().model_dump(), status_code=exc.status_code, headers=exc.response_headers
        )

    app.add_exception_handler(Unauthenticated, on_unauthenticated)
