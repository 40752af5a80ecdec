"""Builds swarmlearn's three optional C extensions; everything else is in pyproject.toml.

* ``swarmlearn.learn._fast`` (learn/_fast.c): the selection hot path (a decision's
  numbers and choice) and the statistics' updates; without it learn/_armset.py's
  PyArmSet and learn/stats.py run the same logic in plain Python.
* ``swarmlearn.core._untrack`` (core/_untrack.c): takes action events out of the
  cyclic GC; without it the collector keeps walking them, nothing else changes.
* ``swarmlearn.store._sqlite_batch`` (store/_sqlite_batch.c, needs sqlite3.h from
  libsqlite3-dev): writes a SQLite batch in one call with the GIL released; without
  it the store writes through Python's sqlite3.

Each is ``optional=True``: without a C compiler (or the header) the build skips it.
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
