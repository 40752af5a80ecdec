"""The public names of swarmlearn.rl, and that importing it pulls in no heavy dependency."""

from __future__ import annotations

import subprocess
import sys

import swarmlearn.rl


def test_every_exported_name_exists() -> None:
    for name in swarmlearn.rl.__all__:
        assert hasattr(swarmlearn.rl, name), name
    assert sorted(swarmlearn.rl.__all__) == sorted(set(swarmlearn.rl.__all__))


def test_import_needs_neither_torch_nor_gymnasium() -> None:
    code = (
        "import sys, swarmlearn.rl\n"
        "heavy = ('torch', 'gymnasium', 'safetensors', 'matplotlib')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
