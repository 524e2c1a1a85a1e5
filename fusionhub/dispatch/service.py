"""The dispatch service: the system of record for people, cameras, flags, cases and tasks.

`DispatchService` is the one class the console uses; each concern lives in its own module
(people, cameras, flags, cases) and is mixed in here. Every method takes the acting user (a
`Viewer`: the User dict) where access matters, enforces role and region itself, and returns
JSON-ready dicts in the shapes of docs/API.md. Errors: fusionhub.dispatch.errors.
"""

from __future__ import annotations

from fusionhub.dispatch.access import Viewer
from fusionhub.dispatch.calls import CallRecordService
from fusionhub.dispatch.cameras import CameraService
from fusionhub.dispatch.cases import CaseService
from fusionhub.dispatch.clips import ClipService
from fusionhub.dispatch.core import Publish
from fusionhub.dispatch.export import ExportService
from fusionhub.dispatch.flags import FlagService
from fusionhub.dispatch.instructions import InstructionService
from fusionhub.dispatch.intake import IntakeService
from fusionhub.dispatch.people import PeopleService
from fusionhub.dispatch.rooms import RoomService
from fusionhub.dispatch.stats import StatsService
from fusionhub.dispatch.supervision import SupervisionService
from fusionhub.dispatch.terminals import TerminalService
from fusionhub.dispatch.zones import ZoneService

__all__ = ["DispatchService", "Publish", "Viewer"]


class DispatchService(
    RoomService, CallRecordService, PeopleService, ZoneService, CameraService, FlagService, IntakeService, SupervisionService, ExportService, CaseService,
    InstructionService, StatsService,
    ClipService, TerminalService,
):
    """DispatchService(engine, *, data_dir, publish=None, clock=time.time): see the mixed-in modules."""
