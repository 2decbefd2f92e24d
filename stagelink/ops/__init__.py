"""Operating stagelink: Prometheus metrics (``/metrics``) and readiness checks (``/readyz``)."""

from stagelink.ops.metrics import CONTENT_TYPE, OpsMetrics
from stagelink.ops.readiness import Check, Readiness, ReadinessReport

__all__ = ["CONTENT_TYPE", "Check", "OpsMetrics", "Readiness", "ReadinessReport"]
