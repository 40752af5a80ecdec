"""A real deployment on loopback: one SuperLink, three SuperNodes, our ServerApp/ClientApp.

One SuperNode (and its ClientApp) is SIGKILLed while round 1 runs: the node is left
out after the round's timeout and the federation finishes with the other two.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("flwr")

from swarmlearn.fed._deploy import run_app, start_superlink, start_supernode, stopping


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CONFIG = """
[federation]
rounds = 2
episodes = 3
round_timeout = 45.0

[evaluation]
episodes = 3
scenarios = ["troubleshooting", "search"]

[vocabulary]
episodes = 5

[[nodes]]
name = "a"
scenarios = ["troubleshooting"]

[[nodes]]
name = "b"
scenarios = ["search"]

[[nodes]]
name = "c"
scenarios = ["search:hard", "troubleshooting"]
"""


@pytest.mark.slow
@pytest.mark.integration
def test_superlink_and_supernodes_finish_with_a_node_killed_mid_round(tmp_path: Path) -> None:
    cfg = tmp_path / "fed.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "report.json"
    port = _free_port()
    link = start_superlink(tmp_path, port=port)
    nodes = [start_supernode(tmp_path, index=i, nodes=3, superlink=f"127.0.0.1:{port}",
                             port=_free_port()) for i in range(3)]
    with stopping([link, *nodes]):
        victim = nodes[2]

        def kill_when_training() -> None:  # round 1 has started once a ClientApp logs
            t0 = time.monotonic()
            while time.monotonic() - t0 < 60:
                if "clientapp" in victim.log.read_text(errors="replace").lower():
                    break
                time.sleep(0.2)
            victim.kill()

        killer = threading.Thread(target=kill_when_training, daemon=True)
        killer.start()
        done = run_app(tmp_path, cfg, out)
        killer.join(5)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["stopped"] == "completed" and len(report["rounds"]) == 2
    for rnd in report["rounds"]:
        assert len(rnd["answered"]) == 2, rnd
        assert len(rnd["failures"]) == 1, rnd
    assert sorted(report["evaluation"]) == ["0", "1"]
