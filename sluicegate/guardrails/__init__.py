"""Guardrail phases: rules that see (and may block or rewrite) what passes through.

    phases     the four hooks, the Guardrail protocol, GuardrailPhases (rules per hook,
               grouped once) and StreamWatch (reply rules over a stream, chunk by chunk)
    views      what a rule is shown, decoded into the canonical form only when asked
    verdicts   Allow | Block(reason) | Mutate(content)

The pipeline calls GuardrailPhases at its two points (before the attempts, on the
reply). Detectors (PII, secrets, injection) are rules written against this contract;
none ships yet, so the pipeline holds an empty GuardrailPhases and pays two boolean
checks a request.
"""

from sluicegate.guardrails.phases import (
    ContentView,
    Guardrail,
    GuardrailPhases,
    Phase,
    StreamWatch,
)
from sluicegate.guardrails.verdicts import ALLOW, Allow, Block, Mutate, Verdict
from sluicegate.guardrails.views import ReplyView, RequestView, StreamView

__all__ = [
    "ALLOW",
    "Allow",
    "Block",
    "ContentView",
    "Guardrail",
    "GuardrailPhases",
    "Mutate",
    "Phase",
    "ReplyView",
    "RequestView",
    "StreamView",
    "StreamWatch",
    "Verdict",
]
