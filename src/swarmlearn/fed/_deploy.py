"""A deployed federation: Flower's SuperLink and SuperNodes as real processes.

``swarmlearn fed server`` starts ``flower-superlink`` (HTTP on 127.0.0.1 unless
told otherwise), waits for the config's nodes to connect, submits our Flower
app with ``flwr run`` (the app's components are
``swarmlearn.fed._apps:server_app`` / ``client_app``; the run config names the
federation TOML and the report file) and waits for the report.
``swarmlearn fed node`` runs one ``flower-supernode`` whose ``partition-id`` is
the node's index in ``[[nodes]]``. The Flower processes are children in their
own process group, stopped with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from swarmlearn.errors import BackendUnavailable, MissingExtraError

__all__ = ["FlowerProcess", "run_app", "start_superlink", "start_supernode", "write_app"]

logger = logging.getLogger(__name__)

APP_TOML = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "swarmlearn-fed"
version = "1.0.0"
description = "swarmlearn's federation of swarms (the code is the installed swarmlearn)"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "swarmlearn"

[tool.flwr.app.components]
serverapp = "swarmlearn.fed._apps:server_app"
clientapp = "swarmlearn.fed._apps:client_app"

[tool.flwr.app.config]
fed-config = ""
fed-output = ""
"""


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise MissingExtraError(f"{name!r} is not installed; it comes with the 'fed' extra: run "
                                "`scripts/install.sh fed` (or `pip install 'swarmlearn[fed]'`)")
    return found


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["FLWR_HOME"] = str(home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


class FlowerProcess:
    """A Flower process started in its own process group (its children go with it)."""

    def __init__(self, args: Sequence[str], log: Path, home: Path) -> None:
        self.log = log
        self._fh = log.open("wb")
        self.proc = subprocess.Popen(list(args), stdout=self._fh, stderr=subprocess.STDOUT,
                                     env=_env(home), start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL the group at once (a crash)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait(timeout)
        self._fh.close()


def write_app(directory: Path, home: Path, port: int, host: str = "127.0.0.1") -> None:
    """The Flower app directory and a Flower home whose default SuperLink is ``host:port``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pyproject.toml").write_text(APP_TOML, encoding="utf-8")
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "{host}:{port}"\n'
        "insecure = true\n", encoding="utf-8")


def _wait_health(proc: FlowerProcess, url: str, timeout: float) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.proc.poll() is not None:
            raise BackendUnavailable(f"the Flower process exited ({proc.proc.returncode}); "
                                     f"see {proc.log}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers (404 for "/" is an answer)
        except OSError:
            pass
        time.sleep(0.3)
    raise BackendUnavailable(f"the Flower process did not answer on {url} in {timeout:.0f}s; "
                             f"see {proc.log}")


def start_superlink(workdir: Path, *, port: int, host: str = "127.0.0.1",
                    timeout: float = 60.0) -> FlowerProcess:
    home = workdir / "flwr-home"
    write_app(workdir / "app", home, port, host)
    proc = FlowerProcess([_bin("flower-superlink"), "--insecure", "--host", host,
                          "--port", str(port), "--disable-runtime-dependency-installation",
                          "--database", str(workdir / "superlink.db")],
                         workdir / "superlink.log", home)
    try:
        _wait_health(proc, f"http://{host}:{port}/", timeout)
    except BackendUnavailable:
        proc.stop()
        raise
    return proc


def start_supernode(workdir: Path, *, index: int, nodes: int, superlink: str, port: int,
                    fed_config: Path | None = None) -> FlowerProcess:
    node_config = f"partition-id={index} num-partitions={nodes}"
    if fed_config is not None:
        node_config += f" fed-config='{fed_config}'"
    home = workdir / f"node{index}-home"
    home.mkdir(parents=True, exist_ok=True)
    return FlowerProcess([_bin("flower-supernode"), "--insecure", "--superlink", superlink,
                          "--host", "127.0.0.1", "--port", str(port),
                          "--node-config", node_config],
                         workdir / f"node{index}.log", home)


def run_app(workdir: Path, fed_config: Path, output: Path) -> subprocess.CompletedProcess[str]:
    """Submit the app to the SuperLink of ``workdir`` (``flwr run``) and stream its log."""
    cfg = f"fed-config='{fed_config.resolve()}' fed-output='{output.resolve()}'"
    return subprocess.run([_bin("flwr"), "run", str(workdir / "app"), "local",
                           "--run-config", cfg, "--stream"], env=_env(workdir / "flwr-home"),
                          capture_output=True, text=True, check=False)


@contextlib.contextmanager
def stopping(procs: list[FlowerProcess]) -> Iterator[list[FlowerProcess]]:
    try:
        yield procs
    finally:
        for p in reversed(procs):
            p.stop()
