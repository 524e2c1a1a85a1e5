"""Conference terminals on record: name, SIP URI and region (the live call belongs to media)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from fusionhub.dispatch.access import Viewer, region_filter, region_visible, require_role
from fusionhub.dispatch.core import ServiceCore
from fusionhub.dispatch.errors import Duplicate, Invalid, NotFound
from fusionhub.dispatch.models import TerminalRecord, to_epoch

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")
SIP_URI = re.compile(r"^sip:[A-Za-z0-9_.!~*'()&=+$,;?/%-]{1,64}@\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?$")


def terminal_dict(t: TerminalRecord) -> dict[str, Any]:
    """`Terminal` of the API (without live state)."""
    return {"id": t.id, "name": t.name, "sip_uri": t.sip_uri, "region": t.region, "created_at": to_epoch(t.created_at)}


class TerminalService(ServiceCore):
    """Create, list and look up terminals (admins and commanders write; staff read)."""

    async def create_terminal(self, viewer: Viewer, name: str, sip_uri: str, region: str) -> dict[str, Any]:
        """A new terminal in the viewer's region (or below). Invalid, Conflict (name taken)."""
        require_role(viewer, "admin", "commander")
        if not NAME.match(name):
            raise Invalid("name", "1-48 letters, digits, '_', '.', '-', starting with a letter or digit")
        if not SIP_URI.match(sip_uri):
            raise Invalid("sip_uri", "a SIP URI like sip:room1@10.0.0.5:5060 (numeric IPv4 host)")
        if not region or len(region) > 128 or not region_visible(viewer, region):
            raise Invalid("region", "your region or one below it")
        record = TerminalRecord(name=name, sip_uri=sip_uri, region=region, created_by=int(viewer["id"]), created_at=self.now())
        try:
            async with self.write_session() as session, session.begin():
                session.add(record)
        except IntegrityError:
            raise Duplicate(f"a terminal named {name!r} exists") from None
        return terminal_dict(record)

    async def list_terminals(self, viewer: Viewer) -> list[dict[str, Any]]:
        """Terminals in the viewer's region and below."""
        require_role(viewer, "admin", "commander", "duty")
        async with self.read_session() as session:
            rows = await session.scalars(
                select(TerminalRecord).where(region_filter(TerminalRecord.region, viewer)).order_by(TerminalRecord.id)
            )
            return [terminal_dict(t) for t in rows]

    async def find_terminal(self, host: str, port: int) -> dict[str, Any] | None:
        """The terminal whose SIP URI names `host:port` (a terminal calling the hub), or None."""
        async with self.read_session() as session:
            for record in await session.scalars(select(TerminalRecord).order_by(TerminalRecord.id)):
                hostport = record.sip_uri.split("@", 1)[1]
                if hostport == f"{host}:{port}" or (port == 5060 and hostport == host):
                    return {**terminal_dict(record), "created_by": record.created_by}
        return None

    async def get_terminal(self, viewer: Viewer, terminal_id: int) -> dict[str, Any]:
        """One terminal of the viewer's region; NotFound otherwise."""
        require_role(viewer, "admin", "commander", "duty")
        async with self.read_session() as session:
            record = await session.get(TerminalRecord, terminal_id)
        if record is None or not region_visible(viewer, record.region):
            raise NotFound(f"no terminal {terminal_id}")
        return terminal_dict(record)
