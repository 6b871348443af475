"""The demo's plan: the same seed plans the same requests, and a plan holds every kind
of traffic the panels need."""

from __future__ import annotations

from sluicegate.demo.org import FLAKY_MODEL
from sluicegate.demo.plan import plan


def test_the_same_seed_plans_the_same_requests_and_another_seed_others() -> None:
    first, again, other = plan(7, 300), plan(7, 300), plan(8, 300)
    assert first == again
    assert first != other
    assert first.requests == other.requests == 300


def test_a_plan_holds_every_kind_of_traffic_the_panels_show() -> None:
    sessions = plan(7, 300).sessions
    loops = [s for s in sessions if s.looping]
    assert len(loops) == 1 and len(loops[0].calls) >= 25  # past its 25-a-session limit
    assert any(s.workflow is None for s in sessions)  # untagged
    assert any(s.workflow and s.workflow.tag == "code-review" for s in sessions)
    assert {s.tool.name for s in sessions} >= {"claude-code", "cursor", "codex", "openai-python"}
    with_outcome = [s for s in sessions if s.outcome is not None]
    assert with_outcome and any(s.outcome.via_github for s in with_outcome if s.outcome)
    assert len(with_outcome) < len(sessions)
    assert any(c.model == FLAKY_MODEL for s in sessions for c in s.calls)


def test_a_small_plan_has_no_room_for_the_loop_and_stays_within_its_size() -> None:
    small = plan(3, 12)
    assert small.requests == 12 and not any(s.looping for s in small.sessions)
