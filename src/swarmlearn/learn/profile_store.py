"""Scenario profiles in the store: artifacts of kind ``profile``, one version per save."""

from __future__ import annotations

import logging

from swarmlearn.errors import ArtifactError
from swarmlearn.learn import _payload as P
from swarmlearn.learn.profiles import ScenarioProfile
from swarmlearn.learn.registry import ScenarioRegistry
from swarmlearn.store import ArtifactRecord, Store

__all__ = ["PROFILE_KIND", "ProfileStore"]

logger = logging.getLogger(__name__)

PROFILE_KIND = "profile"


class ProfileStore:
    """Saves and loads :class:`ScenarioProfile`\\ s; every save is a new version."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, profile: ScenarioProfile, *, status: str = "candidate") -> ArtifactRecord:
        record = self.store.put_artifact(
            PROFILE_KIND,
            profile.name,
            P.encode(profile.to_dict()),
            meta=profile.summary(),
            format_version=ScenarioProfile.FORMAT_VERSION,
            status=status,
        )
        logger.info("stored profile %s v%d (%s)", profile.name, record.version, profile.state)
        return record

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
