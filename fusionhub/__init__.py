"""FusionHub: real-time fused communications and video dispatch hub."""

__version__ = "0.1.0"
