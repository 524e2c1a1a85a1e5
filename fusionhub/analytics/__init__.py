"""Video analytics: YOLO workers behind ZeroMQ and the hub-side rules that turn detections into flags.

Modules: config (settings), models (fetch/export the ONNX model), detector (ONNX Runtime),
worker (the worker process), protocol (hub <-> worker messages), pool (local worker processes),
hub (routing, supervision), rules (zones, tracking, dwell), flags + evidence (FlagRaised out).
Nothing is imported here so that `import fusionhub.analytics.config` stays light.
"""
