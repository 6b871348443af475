"""Fault injection: the table format, its validation, and what one request suffers.

A fault table maps a model name (or "*" for any model without its own entry) to a Fault:

    {"gpt-4o": {"status": 500, "failure_rate": 1.0, "delay_ms": 0, "ttft_ms": 0,
                "inter_chunk_ms": 0, "drop_after_chunks": null, "retry_after": null,
                "error_message": null}}

Latency fields (delay_ms, ttft_ms, inter_chunk_ms) apply to every matching request.
`failure_rate` is the share of matching requests that fail: with the error `status`, or,
for streams when no status is set, by being cut after `drop_after_chunks` events.
A table entry with `failure_rate` but neither `status` nor `drop_after_chunks` fails with 500.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

ANY_MODEL = "*"


class FaultTableError(ValueError):
    """A fault table that cannot be used; the message names the entry and the field."""


@dataclass(frozen=True)
class Fault:
    status: int | None = None
    failure_rate: float = 1.0
    delay_ms: int = 0
    ttft_ms: int = 0
    inter_chunk_ms: int = 0
    drop_after_chunks: int | None = None
    retry_after: str | None = None
    error_message: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RequestFaults:
    """What one request suffers, decided once when it arrives."""

    delay_s: float = 0.0
    error_status: int | None = None
    error_message: str | None = None
    retry_after: str | None = None
    ttft_s: float = 0.0
    inter_chunk_s: float = 0.0
    drop_after_events: int | None = None


NO_FAULTS = RequestFaults()


def decide(fault: Fault | None, rng: random.Random) -> RequestFaults:
    if fault is None:
        return NO_FAULTS
    can_fail = fault.status is not None or fault.drop_after_chunks is not None
    fails = can_fail and rng.random() < fault.failure_rate
    return RequestFaults(
        delay_s=fault.delay_ms / 1000,
        error_status=fault.status if fails else None,
        error_message=fault.error_message,
        retry_after=fault.retry_after,
        ttft_s=fault.ttft_ms / 1000,
        inter_chunk_s=fault.inter_chunk_ms / 1000,
        drop_after_events=fault.drop_after_chunks if fails else None,
    )


def parse_fault_table(raw: Any) -> dict[str, Fault]:
    """Validate a table given as JSON-like data; ready-made Fault values pass through."""
    if not isinstance(raw, dict):
        raise FaultTableError("a fault table is a JSON object mapping model names to faults")
    return {
        str(model): entry if isinstance(entry, Fault) else parse_fault(str(model), entry)
        for model, entry in raw.items()
    }


def parse_fault(model: str, raw: Any) -> Fault:
    if not isinstance(raw, dict):
        raise FaultTableError(f"{model}: a fault is a JSON object")
    unknown = set(raw) - set(Fault.__dataclass_fields__)
    if unknown:
        raise FaultTableError(f"{model}: unknown fault fields {sorted(unknown)}")
    status = _optional_int(model, raw, "status", minimum=100, maximum=599)
    drop = _optional_int(model, raw, "drop_after_chunks", minimum=0)
    if status is None and drop is None and "failure_rate" in raw:
        status = 500  # a failure rate alone means "fail", and 500 is the plain failure
    rate = raw.get("failure_rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise FaultTableError(f"{model}: failure_rate must be a number between 0 and 1")
    return Fault(
        status=status,
        failure_rate=float(rate),
        delay_ms=_optional_int(model, raw, "delay_ms", minimum=0) or 0,
        ttft_ms=_optional_int(model, raw, "ttft_ms", minimum=0) or 0,
        inter_chunk_ms=_optional_int(model, raw, "inter_chunk_ms", minimum=0) or 0,
        drop_after_chunks=drop,
        retry_after=_optional_text(model, raw, "retry_after"),
        error_message=_optional_text(model, raw, "error_message"),
    )


def load_faults_file(path: str | Path) -> dict[str, Fault]:
    """Read a fault table from a YAML or JSON file (YAML is a superset of JSON)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise FaultTableError(f"{path}: not valid JSON or YAML ({exc})") from exc
    return parse_fault_table(raw or {})


def _optional_int(
    model: str, raw: dict[str, Any], field: str, *, minimum: int, maximum: int | None = None
) -> int | None:
    value = raw.get(field)
    if value is None:
        return None
    in_range = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if not in_range or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise FaultTableError(f"{model}: {field} must be an integer {bounds}")
    return value


def _optional_text(model: str, raw: dict[str, Any], field: str) -> str | None:
    value = raw.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FaultTableError(f"{model}: {field} must be a string or a number")
    return str(value)
