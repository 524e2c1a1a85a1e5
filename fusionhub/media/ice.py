"""ICE settings for the hub's peer connections: which servers, which local addresses.

Two aiortc/aioice defaults matter for a hub that must talk only where it is told to:
- aiortc falls back to the public STUN server stun.l.google.com when `iceServers` is None, so
  we always pass an explicit list (empty by default);
- aioice offers a host candidate on every interface address (and never on 127.0.0.1). The only
  hook to restrict that is the module function `aioice.ice.get_host_addresses`, which
  `Connection.gather_candidates` looks up at call time; `pin_host_addresses` replaces it.
  That is process-wide (every aioice connection in this process, ours or a test client's), so
  the gateway pins at start and restores the original at stop.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from fusionhub.media.config import MediaConfig

log = logging.getLogger(__name__)

_ORIGINAL_GET_HOST_ADDRESSES: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses


def rtc_configuration(config: MediaConfig) -> RTCConfiguration:
    """The RTCConfiguration for one peer connection: exactly the configured ICE servers, none by default."""
    return RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in config.ice_servers])


def pin_host_addresses(addresses: list[str] | None) -> None:
    """Offer host candidates only on `addresses` (None restores aioice's own interface scan)."""
    if addresses is None:
        aioice.ice.get_host_addresses = _ORIGINAL_GET_HOST_ADDRESSES  # type: ignore[assignment]
        return
    pinned = [str(ipaddress.ip_address(a)) for a in addresses]  # ValueError on a bad address

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [
            a
            for a in pinned
            if (use_ipv4 and ipaddress.ip_address(a).version == 4)
            or (use_ipv6 and ipaddress.ip_address(a).version == 6)
        ]

    aioice.ice.get_host_addresses = get_host_addresses
    log.info("ICE host candidates pinned to %s", ", ".join(pinned))


def host_addresses_pinned() -> bool:
    """True while `pin_host_addresses` has replaced aioice's interface scan."""
    return aioice.ice.get_host_addresses is not _ORIGINAL_GET_HOST_ADDRESSES
