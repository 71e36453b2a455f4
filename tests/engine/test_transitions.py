"""Properties of the transition table: reachability, no dead ends, final terminal phases, docs in sync."""

from collections import deque
from pathlib import Path

from rollout.api.rollout import TERMINAL_PHASES, Phase
from rollout.engine.transitions import TABLE, Effect, Event, render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "state-machine.md"


def successors(phase: Phase) -> set[Phase]:
    out = {row.to for (p, _), row in TABLE.items() if p == phase}
    # RESUME returns to the phase that paused, which is always Progressing (pause is only allowed there)
    return out


def test_every_phase_is_reachable_from_pending() -> None:
    seen = {Phase.PENDING}
    queue = deque([Phase.PENDING])
    while queue:
        for nxt in successors(queue.popleft()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    assert seen == set(Phase)


def test_no_dead_ends_every_active_phase_can_finish() -> None:
    for phase in Phase:
        if phase in TERMINAL_PHASES:
            continue
        seen, queue = {phase}, deque([phase])
        while queue:
            for nxt in successors(queue.popleft()):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        assert seen & TERMINAL_PHASES, f"{phase} cannot reach a terminal phase"
        # an abort is always possible from an active phase
        assert (phase, Event.ABORT_REQUESTED) in TABLE


def test_terminal_phases_are_final() -> None:
    """A finished rollout stays finished: a retry starts a new attempt, and only a promotion can be undone
    (into another terminal phase)."""
    for (phase, event), row in TABLE.items():
        if phase in TERMINAL_PHASES and event == Event.UNDO_REQUESTED:
            assert (phase, row.to) == (Phase.SUCCEEDED, Phase.UNDONE)
        elif phase in TERMINAL_PHASES:
            assert row.to == phase, f"{phase} --{event}--> {row.to}"
            assert row.effect == Effect.RETRY


def test_every_event_is_used_and_every_row_has_a_reason() -> None:
    used = {event for (_, event) in TABLE}
    assert used == set(Event)
    for row in TABLE.values():
        assert row.reason and row.reason[0].isupper() and " " not in row.reason


def test_pause_only_from_progressing_so_resume_has_one_target() -> None:
    paused_from = {p for (p, _), row in TABLE.items() if row.effect == Effect.PAUSE}
    assert paused_from == {Phase.PROGRESSING}


def test_every_row_into_paused_says_why_and_no_other_does() -> None:
    for (phase, event), row in TABLE.items():
        assert (row.to == Phase.PAUSED) == (row.paused_for is not None), (phase, event)


def test_finishing_rows_lead_to_terminal_phases() -> None:
    for row in TABLE.values():
        assert (row.effect == Effect.FINISH) == (row.to in TERMINAL_PHASES and row.effect != Effect.RETRY)


def test_docs_match_the_table() -> None:
    assert DOC.read_text() == render_markdown(), (
        "regenerate: python -m rollout.engine.transitions > docs/state-machine.md"
    )
