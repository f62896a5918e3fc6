"""Paired clients (ids, names, which master key their secret derives from, revocation)."""
from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import insert, select, update

from .access import Access, WriteAccess
from .schema import clients


class Client(NamedTuple):
    """A paired client; its secret is derived from a master key, never stored."""

    id: str
    name: str
    created_ts: int  # Unix seconds
    key_id: str
    revoked: bool


def _client(r: Any) -> Client:
    return Client(r.id, r.name, r.created_ts, r.key_id, bool(r.revoked))


class ClientReads(Access):
    """Paired clients, read."""

    def clients(self) -> list[Client]:
        """Every client, oldest first."""
        with self._conn() as conn:
            return [_client(r) for r in conn.execute(select(clients).order_by(clients.c.created_ts, clients.c.id))]

    def client(self, client_id: str) -> Client | None:
        """One client (revoked ones too), None if unknown."""
        with self._conn() as conn:
            row = conn.execute(select(clients).where(clients.c.id == client_id)).first()
        return _client(row) if row else None


class ClientWrites(WriteAccess):
    """Pairing and revoking."""

    def add_client(self, client: Client) -> None:
        """Store a new client (its id must be unused)."""
        self.conn.execute(insert(clients).values(**client._asdict()))

    def revoke_client(self, client_id: str) -> bool:
        """False when there is no such client."""
        return self.conn.execute(update(clients).where(clients.c.id == client_id).values(revoked=True)).rowcount > 0
