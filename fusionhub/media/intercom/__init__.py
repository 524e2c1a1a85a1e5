"""Push-to-talk group intercom: floor-controlled rooms that forward the holder's Opus packets as they are."""

from fusionhub.media.intercom.config import IntercomConfig
from fusionhub.media.intercom.service import Intercom
from fusionhub.media.intercom.session import Participant

__all__ = ["Intercom", "IntercomConfig", "Participant"]
