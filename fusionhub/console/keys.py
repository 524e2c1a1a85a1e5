"""Typed application keys for the shared resources the aiohttp app owns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from fusionhub.analytics.hub import AnalyticsHub
    from fusionhub.console.auth import TokenSigner
    from fusionhub.console.callbridge import TerminalBridge
    from fusionhub.console.callrecording import CallRecording
    from fusionhub.console.config import HubConfig
    from fusionhub.console.wiring import CameraWiring
    from fusionhub.dispatch.escalation import Escalator
    from fusionhub.dispatch.service import DispatchService
    from fusionhub.dispatch.supervision import Supervisor
    from fusionhub.media.clips import ClipRecorder
    from fusionhub.media.gateway import MediaGateway
    from fusionhub.media.intercom import Intercom
    from fusionhub.signaling.bus import Bus
    from fusionhub.signaling.calls import CallRegistry
    from fusionhub.signaling.ws import WsHub

CONFIG: web.AppKey[HubConfig] = web.AppKey("config")
SIGNER: web.AppKey[TokenSigner] = web.AppKey("signer")
DISPATCH: web.AppKey[DispatchService] = web.AppKey("dispatch")
BUS: web.AppKey[Bus] = web.AppKey("bus")
WSHUB: web.AppKey[WsHub] = web.AppKey("wshub")
MEDIA: web.AppKey[MediaGateway] = web.AppKey("media")
ANALYTICS: web.AppKey[AnalyticsHub] = web.AppKey("analytics")
WIRING: web.AppKey[CameraWiring] = web.AppKey("wiring")
INTERCOM: web.AppKey[Intercom] = web.AppKey("intercom")
# the live video calls from cases (console/api_calls.py)
CALLS: web.AppKey[CallRegistry] = web.AppKey("calls")
# each call party's publisher recorded into the case (console/callrecording.py)
CALL_RECORDING: web.AppKey[CallRecording] = web.AppKey("call_recording")
# what the conference terminals in calls are sent: the caller's video, the call's audio (console/callbridge.py)
TERMINAL_BRIDGE: web.AppKey[TerminalBridge] = web.AppKey("terminal_bridge")
# WHEP session id -> user id, so only the viewer who opened a session (or an admin) ends it
WHEP_OWNERS: web.AppKey[dict[str, int]] = web.AppKey("whep_owners")
# WHIP session id -> user id: only the publisher (or an admin) ends a publishing session
WHIP_OWNERS: web.AppKey[dict[str, int]] = web.AppKey("whip_owners")
CLIPS: web.AppKey[ClipRecorder] = web.AppKey("clips")
# the hub's instruction escalator (console/tasking.py); tests and tools poke it
ESCALATOR: web.AppKey[Escalator] = web.AppKey("escalator")
# the hub's deadline supervisor (console/supervision.py); tests and tools poke it
SUPERVISOR: web.AppKey[Supervisor] = web.AppKey("supervisor")
