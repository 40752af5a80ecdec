"""The public names are exported, and importing swarmlearn pulls no heavy extra."""

from __future__ import annotations

import subprocess
import sys

import swarmlearn


def test_all_names_exist() -> None:
    for name in swarmlearn.__all__:
        assert hasattr(swarmlearn, name), name


def test_core_import_is_light() -> None:
    code = (
        "import sys, swarmlearn, swarmlearn.cli, swarmlearn.session, swarmlearn.eval;"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'xllamacpp', 'mlflow', "
        "'gymnasium', 'matplotlib') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
