# Types of the optional C helper in _untrack.c (see core/swarm.py).
from typing import TypeVar

_T = TypeVar("_T")

def untrack(obj: _T, /) -> _T: ...
