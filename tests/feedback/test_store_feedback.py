"""The feedback event in the store: written beside the episode, never over it (schema v4)."""

from __future__ import annotations

import sqlalchemy as sa

from swarmlearn.core.events import EpisodeEnded, FeedbackEvent
from swarmlearn.store import SqlStore
from swarmlearn.types import Failure, Success, Timeout


def _episode(session: int, seq: int, task: str) -> EpisodeEnded:
    eid = session << 32 | seq
    return EpisodeEnded(eid, session, task, "", seq, 7, Failure("timeout of a check"), 3, 5, 0.1,
                        eid, eid, {}, 1.0)


def _feedback(ended: EpisodeEnded, *, applied: bool, outcome: object, label: str) -> FeedbackEvent:
    return FeedbackEvent(ended.session, ended.task, ended.id, f"text for {label}", label, 0.9,
                         "fb@abc", applied, outcome, 1.0, 2.0)  # type: ignore[arg-type]


def test_applied_feedback_corrects_the_outcome_and_keeps_the_record(store_url: str) -> None:
    st = SqlStore(store_url)
    sid = st.open_session(scenario="s")
    a, b = _episode(sid, 1, "t:1"), _episode(sid, 2, "t:2")
    st.write([a, b])
    st.write([_feedback(a, applied=True, outcome=Success(1.0), label="joy"),
              _feedback(b, applied=False, outcome=Success(1.0), label="relief")])
    got = {e.task: e.outcome for e in st.episodes(session=sid)}
    assert got == {"t:1": Success(1.0), "t:2": Failure("timeout of a check")}
    raw = {e.task: e.outcome for e in st.episodes(session=sid, corrected=False)}
    assert raw["t:1"] == Failure("timeout of a check")  # the recorded row is as written
    # the latest applied feedback wins
    st.write([_feedback(a, applied=True, outcome=Timeout(0.3), label="impatience")])
    assert st.episodes(session=sid)[0].outcome == Timeout(0.3)
    fb = st.feedback(session=sid)
    assert [f.label for f in fb] == ["joy", "relief", "impatience"]
    assert fb[1].applied is False and fb[0].classifier == "fb@abc"
    assert st.feedback(episode=b.id)[0].text == "text for relief"
    with st.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT outcome FROM episodes ORDER BY id")).all()
    assert [r[0] for r in rows] == ["failure", "failure"]
    st.close()


def test_v3_database_migrates_to_feedback_table(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    st = SqlStore(url)
    with st.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE feedback"))
        conn.execute(sa.text("UPDATE meta SET value = '3' WHERE key = 'schema_version'"))
    st.close()
    st = SqlStore(url)
    sid = st.open_session(scenario="s")
    e = _episode(sid, 1, "t:1")
    st.write([e, _feedback(e, applied=True, outcome=Success(0.5), label="joy")])
    assert st.episodes(session=sid)[0].outcome == Success(0.5)
    assert st.schema_version() == 4
    st.close()
