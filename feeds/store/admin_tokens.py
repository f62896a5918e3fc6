"""Admin tokens (curator writes): each has an id, so each can be revoked on its own."""
from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import insert, select, update

from .access import Access, WriteAccess
from .schema import admin_tokens


class AdminToken(NamedTuple):
    id: str
    created_ts: int  # Unix seconds
    note: str
    revoked: bool


def _token(r: Any) -> AdminToken:
    return AdminToken(r.id, r.created_ts, r.note, bool(r.revoked))


class AdminTokenReads(Access):
    def admin_tokens(self) -> list[AdminToken]:
        """Every admin token ever minted, oldest first."""
        with self._conn() as conn:
            return [_token(r) for r in conn.execute(select(admin_tokens).order_by(admin_tokens.c.created_ts,
                                                                                  admin_tokens.c.id))]

    def admin_token(self, token_id: str) -> AdminToken | None:
        with self._conn() as conn:
            row = conn.execute(select(admin_tokens).where(admin_tokens.c.id == token_id)).first()
        return _token(row) if row else None


class AdminTokenWrites(WriteAccess):
    def add_admin_token(self, token: AdminToken) -> None:
        self.conn.execute(insert(admin_tokens).values(**token._asdict()))

    def revoke_admin_token(self, token_id: str) -> bool:
        """False when there is no such token."""
        stmt = update(admin_tokens).where(admin_tokens.c.id == token_id).values(revoked=True)
        return self.conn.execute(stmt).rowcount > 0
