"""The Rollout state machine as ONE explicit table: (phase, event) -> (next phase, reason, effect).

Events are facts the engine derives from its inputs (`rollout.engine.machine`); when several hold at once
the first in `Event` order wins. A (phase, event) pair that is not in the table means "not applicable here".
The reason of a row is the Event reason and the condition reason the controller writes.
docs/state-machine.md is generated from this table (`python -m rollout.engine.transitions`), and a test
checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from rollout.api.rollout import TERMINAL_PHASES, PausedFor, Phase


class Event(StrEnum):
    # in priority order: the first event that holds and has a row for the current phase wins
    ABORT_REQUESTED = "AbortRequested"  # a person asked to abort
    OPTED_OUT = "OptedOut"  # the target's knrollout.dev/policy label was removed
    SUPERSEDED = "Superseded"  # a newer revision replaced the candidate
    TEMPLATE_REVERTED = "TemplateReverted"  # the template is back to the stable configuration
    CANDIDATE_FAILED = "CandidateFailed"  # the candidate revision reports Ready=False
    READY_DEADLINE = "ReadyDeadline"  # the candidate did not become Ready within deadlines.candidateReady
    PRE_ROLLOUT_HOOK_FAILED = "PreRolloutHookFailed"
    STEP_HOOK_FAILED = "StepHookFailed"
    ROLLBACK_HOOK = "RollbackHook"  # a rollback webhook answered 2xx
    REGRESSION = "Regression"  # a deciding metric failed (threshold limits or the sequential test)
    DEADLINE_ROLLBACK = "DeadlineRollback"  # deadlines.rollout passed, onRolloutDeadline: rollback
    DEADLINE_PAUSE = "DeadlinePause"  # deadlines.rollout passed, onRolloutDeadline: pause
    PROMOTE_REQUESTED = "PromoteRequested"
    PAUSE_REQUESTED = "PauseRequested"
    RESUME_REQUESTED = "ResumeRequested"  # paused by a person or a deadline (not at a gate)
    GATE_OPENED = "GateOpened"  # at a gate: resumed by a person or its duration passed; next is a weight
    GATE_OPENED_AT_GATE = "GateOpenedAtGate"  # ... the next step is another gate
    GATE_OPENED_LAST = "GateOpenedLast"  # ... it was the last step
    RETRY_REQUESTED = "RetryRequested"
    UNDO_REQUESTED = "UndoRequested"  # a person asked to undo a promotion
    CANDIDATE_READY = "CandidateReady"  # Ready, pre-rollout hooks passed; the first step is a weight
    CANDIDATE_READY_AT_GATE = "CandidateReadyAtGate"  # ... the first step is a gate
    INCONCLUSIVE_ROLLBACK = (
        "InconclusiveRollback"  # the decisive step ended inconclusive; onInconclusive: rollback
    )
    INCONCLUSIVE_HOLD = "InconclusiveHold"  # ... onInconclusive: hold
    STEP_DONE = "StepDone"  # the step's bake passed (or evidence ended it early); next is a weight
    STEP_DONE_AT_GATE = "StepDoneAtGate"  # ... the next step is a gate
    STEP_DONE_LAST = "StepDoneLast"  # ... it was the last step and promotion is confirmed
    PROMOTION_APPLIED = "PromotionApplied"  # Knative serves the candidate at 100%


class Effect(Enum):
    NONE = "none"
    START = "start"  # current step := 0, step clock stopped until its traffic applies
    ADVANCE = "advance"  # current step += 1, step clock stopped until its traffic applies
    PAUSE = "pause"  # remember the phase to resume
    RESUME = "resume"  # back to the remembered phase
    FINISH = "finish"  # stamp finishedAt
    RETRY = "retry"  # ask the controller for a new attempt


@dataclass(frozen=True)
class Row:
    to: Phase
    reason: str
    warning: bool = False
    effect: Effect = Effect.NONE
    paused_for: PausedFor | None = None  # why, when `to` is Paused (status.pausedFor); else None


# The reason of a rollout ended by its target opting out: its final plan is stable alone (no candidate left
# parked under `canary`, since nothing will manage the target's traffic any more).
OPTED_OUT_REASON = "OptedOut"

P, G, Z, M = Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING
ACTIVE = (P, G, Z, M)
FINISH = Effect.FINISH


def _rows() -> dict[tuple[Phase, Event], Row]:
    t: dict[tuple[Phase, Event], Row] = {}

    def add(phases: tuple[Phase, ...], event: Event, row: Row) -> None:
        for phase in phases:
            t[(phase, event)] = row

    add(ACTIVE, Event.ABORT_REQUESTED, Row(Phase.ABORTED, "Aborted", True, FINISH))
    add(ACTIVE, Event.OPTED_OUT, Row(Phase.ABORTED, OPTED_OUT_REASON, True, FINISH))
    add(ACTIVE, Event.SUPERSEDED, Row(Phase.SUPERSEDED, "Superseded", False, FINISH))
    add(ACTIVE, Event.TEMPLATE_REVERTED, Row(Phase.SUPERSEDED, "TemplateReverted", False, FINISH))
    add((P,), Event.CANDIDATE_FAILED, Row(Phase.FAILED, "CandidateFailed", True, FINISH))
    add((G, Z, M), Event.CANDIDATE_FAILED, Row(Phase.ROLLED_BACK, "CandidateFailed", True, FINISH))
    add((P,), Event.READY_DEADLINE, Row(Phase.FAILED, "CandidateReadyDeadline", True, FINISH))
    add((P,), Event.PRE_ROLLOUT_HOOK_FAILED, Row(Phase.FAILED, "PreRolloutWebhookFailed", True, FINISH))
    add((G,), Event.STEP_HOOK_FAILED, Row(Phase.ROLLED_BACK, "StepWebhookFailed", True, FINISH))
    add((G, Z), Event.ROLLBACK_HOOK, Row(Phase.ROLLED_BACK, "RollbackWebhook", True, FINISH))
    add((G, Z), Event.REGRESSION, Row(Phase.ROLLED_BACK, "RegressionDetected", True, FINISH))
    add(ACTIVE, Event.DEADLINE_ROLLBACK, Row(Phase.FAILED, "RolloutDeadlineExceeded", True, FINISH))
    add((P,), Event.DEADLINE_PAUSE, Row(Phase.FAILED, "RolloutDeadlineExceeded", True, FINISH))
    add((G,), Event.DEADLINE_PAUSE, Row(Z, "RolloutDeadlineExceeded", True, Effect.PAUSE, PausedFor.DEADLINE))
    add((G, Z), Event.PROMOTE_REQUESTED, Row(M, "PromoteRequested"))
    add((G,), Event.PAUSE_REQUESTED, Row(Z, "PauseRequested", False, Effect.PAUSE, PausedFor.REQUEST))
    add((Z,), Event.RESUME_REQUESTED, Row(G, "Resumed", False, Effect.RESUME))
    add((Z,), Event.GATE_OPENED, Row(G, "GateOpened", False, Effect.ADVANCE))
    add((Z,), Event.GATE_OPENED_AT_GATE, Row(Z, "ManualGate", False, Effect.ADVANCE, PausedFor.GATE))
    add((Z,), Event.GATE_OPENED_LAST, Row(M, "GateOpened"))
    for terminal in (Phase.ROLLED_BACK, Phase.FAILED, Phase.ABORTED):
        add((terminal,), Event.RETRY_REQUESTED, Row(terminal, "RetryRequested", False, Effect.RETRY))
    add((Phase.SUCCEEDED,), Event.UNDO_REQUESTED, Row(Phase.UNDONE, "Undone", True, FINISH))
    add((P,), Event.CANDIDATE_READY, Row(G, "CandidateReady", False, Effect.START))
    add((P,), Event.CANDIDATE_READY_AT_GATE, Row(Z, "ManualGate", False, Effect.START, PausedFor.GATE))
    add((G,), Event.INCONCLUSIVE_ROLLBACK, Row(Phase.ROLLED_BACK, "InconclusiveRollback", True, FINISH))
    add((G,), Event.INCONCLUSIVE_HOLD, Row(Z, "InconclusiveHold", True, Effect.PAUSE, PausedFor.INCONCLUSIVE))
    add((G,), Event.STEP_DONE, Row(G, "StepAdvanced", False, Effect.ADVANCE))
    add((G,), Event.STEP_DONE_AT_GATE, Row(Z, "ManualGate", False, Effect.ADVANCE, PausedFor.GATE))
    add((G,), Event.STEP_DONE_LAST, Row(M, "AnalysisPassed"))
    add((M,), Event.PROMOTION_APPLIED, Row(Phase.SUCCEEDED, "Promoted", False, FINISH))
    return t


TABLE: dict[tuple[Phase, Event], Row] = _rows()


def lookup(phase: Phase, event: Event) -> Row | None:
    return TABLE.get((phase, event))


def render_markdown() -> str:
    """The table as docs/state-machine.md shows it."""
    lines = [
        "# The Rollout state machine",
        "",
        "GENERATED from `rollout/engine/transitions.py` by `python -m rollout.engine.transitions`; a test",
        "checks that this file and the code agree. Events are listed in priority order: when several hold at",
        "one reconcile, the first one with a row for the current phase wins. Terminal phases: "
        + ", ".join(p.value for p in Phase if p in TERMINAL_PHASES)
        + ".",
        "",
        "| From | Event | To (pausedFor) | Reason (Event and condition) | Type | Effect |",
        "|---|---|---|---|---|---|",
    ]
    for event in Event:
        for phase in Phase:
            row = TABLE.get((phase, event))
            if row is None:
                continue
            kind = "Warning" if row.warning else "Normal"
            to = f"{row.to.value} ({row.paused_for.value})" if row.paused_for else row.to.value
            lines.append(
                f"| {phase.value} | {event.value} | {to} | {row.reason} | {kind} | {row.effect.value} |"
            )
    return "\n".join([*lines, "", *STEP_RULE]) + "\n"


# When StepDone / StepDoneAtGate / StepDoneLast hold (rollout.engine.stepcheck), in the doc's words.
STEP_RULE = (
    "## When a step may end",
    "",
    "A traffic step ends (StepDone, StepDoneAtGate, or StepDoneLast, which promotes) only when Knative serves",
    "its split and every gating metric (not `dryRun`) has fresh evidence:",
    "",
    "- its latest analysed window had data, inside the current step; a latest window without data holds the",
    "  step, unless the policy says `noData: pass`;",
    "- its latest window was measured: an error of the metric source on that window holds the step whatever",
    "  `noData` says and however few errors came in a row (the consecutive-error limit only decides when",
    "  holding turns into the verdict Error);",
    "- no metric failed its last check;",
    "- every step webhook of the step has passed;",
    "- the candidate has the pods Knative wants for it (its clock started only once it had them; see",
    "  rollout.engine.capacity and docs/controller.md).",
    "",
    "Then the step ends either early, when every comparison with `earlyStop` shows the candidate no worse, or",
    "at the end of its bake, once the window reaching into the bake's last interval has been measured (an",
    "outage in the last seconds of a step is seen before the step ends), and a window at least half inside the",
    "step (a short step's evidence is not mostly the previous share's), and the step's analysed windows held at",
    "least `analysis.minStepRequests` candidate requests (default 50): a quiet service waits for evidence rather",
    "than promote on time alone, and the status says `not enough traffic to tell yet: N of M candidate requests`.",
    "When the rollout's deadline comes first, the outcome says so with the same numbers.",
    "A probe (`canary.probe`, a small share before the ladder's first step) looks for regressions only: it does",
    "not wait for `minStepRequests`, and it waits for data at most three times its bake (a small share of a",
    "quiet service's traffic may never be measured; the first step, the policy's first share without a probe,",
    "still waits for its own evidence), while a source error, a failed check or evidence leaning toward a",
    "regression hold it like any step.",
    "A step whose comparisons lean toward a regression is not ended by its bake: while any gating comparison's",
    "anytime-valid p-value is at or below `analysis.leaningHold.pValue` (default 0.3), the step holds, for at most",
    "`leaningHold.maxBakes` times its bake (default 3), and the status says `the evidence leans toward a",
    "regression: latency (p 0.21)`. A small regression is then judged on more traffic at the same exposure instead",
    "of reaching a larger share; the comparisons stay valid however long they run, so holding does not raise the",
    "false-rollback rate, and a good canary whose evidence leaned by chance waits longer (docs/benchmark.md).",
    "Once a step may end, and before a Pending candidate's first share, a policy with `strategy.prewarm` (the",
    "default) first holds the candidate at the pods the next share needs (that share of the stable's pods when the",
    "rollout started; 100% before a promotion), and the share waits until they are ready: at most 30 s for",
    "Knative to want them and at most `analysis.notReadyGrace` for them to start, then it is given without them",
    "(Warning `PrewarmStopped`). The status says `pre-warming the candidate for its next share: 2 of 10 pods",
    "ready` (rollout.engine.prewarm, docs/controller.md). A candidate whose max-scale is below the pods a share",
    "needs is held at its max-scale, and as that share falls due a Warning `CandidateCapped` says so (whether",
    "or not the policy pre-warms).",
    "",
    "## When the evidence stays inconclusive",
    "",
    "A comparison that has shown neither a regression nor that the candidate is no worse is Inconclusive.",
    "An earlier canary step advances at the end of its bake all the same (more traffic brings more",
    "evidence). The decisive step, the one whose end would promote, does what its strategy's",
    "`onInconclusive` says: `canary.onInconclusive` for the last step of a ladder (default `promote`: every",
    "step had fresh data and no step showed a regression), `blueGreen.onInconclusive` for a preview without",
    "`manualPromotion` (default `promote`), `abTest.onInconclusive` for an experiment with",
    "`promoteOnSuccess` (default `hold`: an experiment passes only on evidence that the treatment is no",
    "worse).",
    "",
    "- `hold`: InconclusiveHold pauses the rollout; `rollout promote` promotes it, `rollout abort` rolls it",
    "  back, `rollout resume` checks the evidence gathered since (and holds again if it is still",
    "  inconclusive). Analysis goes on meanwhile, and the rollout deadline still applies;",
    "- `rollback`: InconclusiveRollback rolls the candidate back;",
    "- `promote`: StepDoneLast promotes; `status.inconclusive`, the Promoted Event and the Completed",
    "  condition name the metrics promoted without a conclusion.",
    "",
    "Likewise a rollout promoted with a metric without data under `noData: pass` lists it in",
    '`status.withoutData` and says "promoted without data for X" in its Promoted Event and condition.',
    "A step followed by a gate never decides by itself: the person at the gate reads the verdicts.",
)


if __name__ == "__main__":  # pragma: no cover
    print(render_markdown(), end="")
