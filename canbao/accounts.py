"""`canbao accounts`: an administrator manages accounts through the registry's API, as the API allows
(`/v1/accounts`); only `create-admin` works on the database itself (registry.accounts.cli)."""

from typing import Any

import httpx


class AccountsApiError(Exception):
    """The registry refused: its answer's status and error body."""

    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body
        super().__init__(f"{status}: {body}")


class Accounts:
    def __init__(self, registry_url: str, token: str):
        self._client = httpx.Client(
            base_url=registry_url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )

    def __enter__(self) -> "Accounts":
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._client.request(method, path, **kwargs)
        body = response.json() if response.content else {}
        if response.is_error:
            raise AccountsApiError(response.status_code, body)
        result: dict[str, Any] = body
        return result

    def listing(self, role: str | None = None, enabled: bool | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"role": role, "enabled": enabled}.items() if v is not None}
        items: list[dict[str, Any]] = self._call("GET", "/v1/accounts", params=params)["items"]
        return items

    def id_of(self, username: str) -> str:
        found = [a for a in self.listing() if a["username"] == username.lower()]
        if not found:
            raise AccountsApiError(
                404, {"error": {"code": "account_not_found", "details": {"username": username}}}
            )
        account_id: str = found[0]["account_id"]
        return account_id

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/accounts", json=body)

    def change(self, username: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("PATCH", f"/v1/accounts/{self.id_of(username)}", json=body)

    def disable(self, username: str, reason: str) -> dict[str, Any]:
        return self._call(
            "POST", f"/v1/accounts/{self.id_of(username)}/deactivation", json={"reason": reason}
        )

    def enable(self, username: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/accounts/{self.id_of(username)}/reactivation")
