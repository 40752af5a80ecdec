"""The one protocol every kind of learned artifact implements: :class:`ArtifactKind`.

A kind plugs into the lifecycle (and the daemon) by implementing four
methods, nothing else::

    class MyKind:
        name = "my_kind"                 # the store's artifact kind
        scope = "troubleshooting[heldout]"   # the lineage: the artifact name (per scenario)
        def produce(self, ctx: ProduceContext) -> Produced: ...
        def evaluate(self, version: ArtifactVersion | None,
                     tasks: HeldOutTasks) -> Sequence[TaskResult]: ...
        def apply(self, version: ArtifactVersion | None) -> None: ...
        def revert(self, to: ArtifactVersion | None) -> None: ...

    # Optional: ``evaluate_pair(champion, challenger, tasks) -> (champion's, challenger's)``
    # evaluates both sides of a gate at once (``run_gate`` uses it when a kind has it; the
    # LoRA kind runs each side on its own llama.cpp server and core).

* ``produce`` builds a new version from the recorded data (``ctx.store``,
  the episodes after ``ctx.since_episode``, the current champion to start
  from) and returns its payload, summary and lineage; it must not touch what
  is live. It may be slow: the daemon runs it in a child process when the
  kind is picklable and enforces ``ctx.deadline``.
* ``evaluate`` runs ``version`` (``None``: the baseline, i.e. no learned
  artifact — the base model, empty statistics) on the held-out ``tasks`` and
  returns one :class:`TaskResult` per task seed. Champion and challenger are
  evaluated on the same seeds with the same worker seed (paired). A kind that
  needs a running LLM server holds its client (constructor argument) and, for
  instance, evaluates an adapter with a per-request ``lora`` scale.
* ``apply`` makes ``version`` the one in use (the daemon calls it after a
  promotion and again at start-up, so it must be idempotent). Kinds whose
  consumers read the ``champion`` alias from the store (snapshots, offline
  models: sessions load the champion when they start and, with
  :class:`~swarmlearn.lifecycle.LiveChampions`, at every episode end) have
  nothing more to do; a LoRA kind sets the adapter's scale on the server.
* ``revert`` puts ``to`` (the previous champion, or ``None``: the baseline)
  back in use after a rollback.

Kinds are constructed with what they need (a scenario, a store, a server
client); the lifecycle never looks inside a payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from swarmlearn._config import check_range
from swarmlearn.errors import ConfigError
from swarmlearn.lifecycle._gate import TaskResult
from swarmlearn.lifecycle._records import ArtifactVersion, Produced
from swarmlearn.store import Store

__all__ = ["ArtifactKind", "HeldOutTasks", "ProduceContext"]


@dataclass(frozen=True, kw_only=True, slots=True)
class HeldOutTasks:
    """The task seeds a gate evaluates both sides on, and the worker seed both use."""

    scope: str
    seeds: tuple[int, ...]
    worker_seed: int = 0

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds: a gate needs at least one held-out task", field="seeds")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("seeds: held-out task seeds must be distinct", field="seeds")


@dataclass(frozen=True, kw_only=True, slots=True)
class ProduceContext:
    """What ``produce`` is given: where the data is and what to start from."""

    store: Store
    scope: str
    champion: ArtifactVersion | None
    since_episode: int = 0  # episodes with a larger id are new
    until_episode: int | None = None  # the newest episode id considered (None: all)
    deadline: float | None = None  # time.time() by which to stop (None: no limit)

    def __post_init__(self) -> None:
        check_range("since_episode", self.since_episode, lo=0)


@runtime_checkable
class ArtifactKind(Protocol):
    """A kind of learned artifact (module docstring)."""

    name: str
    scope: str

    def produce(self, ctx: ProduceContext) -> Produced: ...

    def evaluate(
        self, version: ArtifactVersion | None, tasks: HeldOutTasks
    ) -> Sequence[TaskResult]: ...

    def apply(self, version: ArtifactVersion | None) -> None: ...

    def revert(self, to: ArtifactVersion | None) -> None: ...

    # Optional: ``evaluate_pair(champion, challenger, tasks) -> (champion's, challenger's)``
    # evaluates both sides of a gate at once (``run_gate`` uses it when a kind has it; the
    # LoRA kind runs each side on its own llama.cpp server and core).
