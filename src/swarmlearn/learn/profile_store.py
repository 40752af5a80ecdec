"""Scenario profiles in the store: artifacts of kind ``profile``, one version per save.

Every save registers a lifecycle candidate (:mod:`swarmlearn.lifecycle`, scope =
the profile's name, lineage = the sessions recorded so far). A profile's own
gate is its validation on held-out seeds: the version saved when validation
moved it to Active is promoted (:meth:`ProfileStore.promote_if_active`) and is
the profile's ``champion``; a failed validation rejects nothing (the profile
keeps bootstrapping) but is on the log.
"""

from __future__ import annotations

import logging

from swarmlearn.errors import ArtifactError
from swarmlearn.learn import _payload as P
from swarmlearn.learn.profiles import ProfileState, ScenarioProfile
from swarmlearn.learn.registry import ScenarioRegistry
from swarmlearn.store import ArtifactRecord, Store

__all__ = ["PROFILE_KIND", "ProfileStore"]

logger = logging.getLogger(__name__)

PROFILE_KIND = "profile"


class ProfileStore:
    """Saves and loads :class:`ScenarioProfile`\\ s; every save is a new version."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, profile: ScenarioProfile) -> ArtifactRecord:
        from swarmlearn.lifecycle import Lifecycle, Lineage, Produced

        lineage = Lineage(
            inputs={"session_ids": [s.session for s in profile.sessions if s.session]},
            config={"profile": profile.to_dict()["config"]},
            metrics={"state": profile.state.value, "round": profile.round},
        )
        version = Lifecycle(self.store, PROFILE_KIND, profile.name).register(
            Produced(payload=P.encode(profile.to_dict()),
                     format_version=ScenarioProfile.FORMAT_VERSION,
                     summary=profile.summary(), lineage=lineage),
            reason=f"profile saved in state {profile.state}")
        record = version.record
        logger.info("stored profile %s v%d (%s)", profile.name, record.version, profile.state)
        return record

    def promote_if_active(self, record: ArtifactRecord, reason: str) -> bool:
        """Promote the saved version ``record`` if its profile is Active (validated on
        held-out seeds): it becomes the profile's champion. Returns whether it was."""
        from swarmlearn.lifecycle import ArtifactVersion, Lifecycle

        if record.meta.get("state") != ProfileState.ACTIVE.value:
            return False
        Lifecycle(self.store, PROFILE_KIND, record.name).promote(
            ArtifactVersion(record), reason=reason)
        return True

    def champion(self, name: str) -> ScenarioProfile | None:
        """The promoted (validated) version of a profile, or None."""
        from swarmlearn.lifecycle import Lifecycle

        found = Lifecycle(self.store, PROFILE_KIND, name).champion()
        return self.decode(found.record) if found is not None else None

    @staticmethod
    def decode(record: ArtifactRecord) -> ScenarioProfile:
        where = f"profile {record.name} v{record.version}"
        if record.format_version != ScenarioProfile.FORMAT_VERSION:
            raise ArtifactError(
                f"{where}: format_version {record.format_version} is not supported "
                f"(expected {ScenarioProfile.FORMAT_VERSION})"
            )
        profile = ScenarioProfile.from_dict(P.decode(record.payload, where=where), where=where)
        if profile.name != record.name:
            raise ArtifactError(f"{where}: payload is for profile {profile.name!r}")
        return profile

    def load(self, name: str, version: int | None = None) -> ScenarioProfile:
        """One version (default: the latest); StoreError if there is none."""
        return self.decode(self.store.get_artifact(PROFILE_KIND, name, version))

    def get(self, name: str) -> ScenarioProfile | None:
        """The latest version, or None if no profile of that name was ever saved."""
        found = self.store.artifacts(PROFILE_KIND, name, latest=1)
        return self.decode(found[0]) if found else None

    def records(self, *, payload: bool = False) -> list[ArtifactRecord]:
        """The latest record of each profile, by name (not decoded; metadata only
        unless ``payload``)."""
        latest: dict[str, ArtifactRecord] = {}
        for r in self.store.artifacts(PROFILE_KIND, payload=payload):
            if r.name not in latest or r.version > latest[r.name].version:
                latest[r.name] = r
        return [latest[n] for n in sorted(latest)]

    def history(self, name: str) -> list[ArtifactRecord]:
        """Every stored version of a profile, newest first."""
        return self.store.artifacts(PROFILE_KIND, name)

    def load_all(self) -> list[ScenarioProfile]:
        return [self.decode(r) for r in self.records(payload=True)]

    def registry(self) -> ScenarioRegistry[ScenarioProfile]:
        """A registry of the latest version of every stored profile."""
        return ScenarioRegistry(self.load_all())
