"""Builds the optional C accelerator of the selection hot path (learn/_fast.c).

Everything else is in pyproject.toml. Without a C compiler the build skips the
extension (``optional=True``) and swarmlearn runs the same logic in plain
Python (learn/_armset.py's PyArmSet).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "swarmlearn.learn._fast",
            sources=["src/swarmlearn/learn/_fast.c"],
            # no fused multiply-add: the C numbers must equal Python's bit for bit
            extra_compile_args=["-O2", "-ffp-contract=off"],
            optional=True,
        ),
        Extension(
            "swarmlearn.core._untrack",
            sources=["src/swarmlearn/core/_untrack.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(  # needs sqlite3.h (libsqlite3-dev); store/_sql.py falls back without it
            "swarmlearn.store._sqlite_batch",
            sources=["src/swarmlearn/store/_sqlite_batch.c"],
            libraries=["sqlite3"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
    ]
)
