"""The figures of one soak run, and their Markdown summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .verify import ActivityCheck, StorageCheck

__all__ = ["SoakReport"]

#: How many problem lines the summary lists (the rest are counted).
_SHOWN = 20


@dataclass
class SoakReport:
    """Everything a soak run measured; :attr:`ok` is the verdict."""

    database: str
    seed: int
    fault_rate: float
    kill_every: float
    chaos_seconds: float = 0.0
    drain_seconds: float = 0.0
    total_seconds: float = 0.0
    #: Usage API requests by outcome (answered, refused, cut, error).
    requests: Counter[str] = field(default_factory=Counter)
    #: First answers per event (accepted, held, rejected) and duplicate answers to resends.
    answers: Counter[str] = field(default_factory=Counter)
    #: Injected faults by kind, both CRMs together, and the total per CRM.
    faults: Counter[str] = field(default_factory=Counter)
    faults_by_crm: dict[str, int] = field(default_factory=dict)
    kills: int = 0
    restarts: int = 0
    #: Serve processes that exited on their own: (incarnation, exit code).
    crashes: list[tuple[int, int]] = field(default_factory=list)
    final_exit_code: int | None = None
    #: The final sync and writeback finished within the drain timeout (else ``backlog``).
    drain_complete: bool = True
    backlog: str | None = None
    #: The most attempts one event's activity took (retries back off exponentially).
    max_attempts: int = 0
    mutator_rounds: int = 0
    mutations: Counter[str] = field(default_factory=Counter)
    #: Job runs by kind and status, e.g. ``{"sync": {"succeeded": 40, "interrupted": 3}}``.
    job_runs: dict[str, Counter[str]] = field(default_factory=dict)
    #: Writeback counters summed over every pass (written, reconciled, requeued, retried...).
    writeback_counts: Counter[str] = field(default_factory=Counter)
    storage: StorageCheck = field(default_factory=StorageCheck)
    activities: ActivityCheck = field(default_factory=ActivityCheck)

    @property
    def mismatches(self) -> int:
        """Storage differences plus activity contradictions (must be 0)."""
        return len(self.storage.problems) + len(self.activities.problems)

    @property
    def ok(self) -> bool:
        return (
            self.mismatches == 0
            and not self.activities.duplicates
            and not self.activities.missing
            and not self.crashes
            and self.final_exit_code == 0
            and self.drain_complete
        )

    def markdown(self) -> str:
        """The summary as Markdown (printed through Rich, or saved)."""
        a, s = self.activities, self.storage
        runs = {
            kind: ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            for kind, counts in sorted(self.job_runs.items())
        }
        rows: list[tuple[str, str]] = [
            ("verdict", "**PASS**" if self.ok else "**FAIL**"),
            (
                "duration",
                f"{self.chaos_seconds:.0f} s of chaos + {self.drain_seconds:.0f} s final "
                f"sync/writeback ({self.total_seconds:.0f} s in all)"
                + ("" if self.drain_complete else f"; **drain timed out**: {self.backlog}"),
            ),
            ("database", self.database),
            (
                "setup",
                f"seed {self.seed}, {self.fault_rate:.0%} faults, "
                f"a SIGKILL every ~{self.kill_every:g} s",
            ),
            ("usage events sent", f"{a.sent:,}"),
            (
                "first answers",
                ", ".join(f"{n:,} {k}" for k, n in sorted(self.answers.items())) or "none",
            ),
            (
                "usage requests",
                ", ".join(f"{n:,} {k}" for k, n in sorted(self.requests.items())) or "none",
            ),
            (
                "events accepted",
                f"{a.accepted:,} ({a.accepted_after_hold:,} after a hold for an unsynced deal); "
                f"{a.rejected:,} rejected",
            ),
            (
                "faults injected",
                f"{sum(self.faults.values()):,}: "
                + ", ".join(f"{n:,} {k}" for k, n in sorted(self.faults.items()))
                + " ("
                + ", ".join(f"{crm} {n:,}" for crm, n in sorted(self.faults_by_crm.items()))
                + ")",
            ),
            ("kills (SIGKILL)", f"{self.kills}"),
            ("restarts", f"{self.restarts}"),
            ("crashes (not ours)", f"{len(self.crashes)}"),
            ("final SIGTERM exit code", f"{self.final_exit_code}"),
            (
                "CRM changes (mutator)",
                f"{self.mutator_rounds} rounds: "
                + ", ".join(f"{n:,} {k}" for k, n in sorted(self.mutations.items())),
            ),
            ("sync runs", runs.get("sync", "none")),
            ("writeback runs", runs.get("writeback", "none")),
            (
                "writeback totals",
                ", ".join(
                    f"{self.writeback_counts[k]:,} {k}"
                    for k in ("written", "reconciled", "requeued", "retried", "dead")
                )
                + f"; at most {self.max_attempts} attempts for one event",
            ),
            (
                "records compared",
                f"{s.compared:,} ("
                + ", ".join(f"{name} {n:,}" for name, n in sorted(s.by_connection.items()))
                + ")",
            ),
            ("mismatches", f"**{self.mismatches}**"),
            ("activities written once", f"{a.written_once:,} of {a.accepted:,} accepted"),
            ("refused: deal deleted in the CRM first", f"{a.refused_deal_deleted:,}"),
            ("longest hold (unsynced deal → settled)", f"{a.longest_hold_seconds:.0f} s"),
            ("duplicate activities", f"**{len(a.duplicates)}**"),
            ("missing activities", f"**{len(a.missing)}**"),
        ]
        lines = ["## stagelink soak", "", "| figure | value |", "| --- | --- |"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        problems = [
            *s.problems,
            *a.problems,
            *(f"duplicate: {m} written {n} times" for m, n in sorted(a.duplicates.items())),
            *(f"missing: {m}" for m in a.missing),
            *(f"serve incarnation {n} exited with {code}" for n, code in self.crashes),
        ]
        if problems:
            lines += ["", "### Problems", ""]
            lines += [f"- {p}" for p in problems[:_SHOWN]]
            if len(problems) > _SHOWN:
                lines.append(f"- ... and {len(problems) - _SHOWN} more")
        return "\n".join(lines) + "\n"
