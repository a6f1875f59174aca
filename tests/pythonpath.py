"""``PYTHONPATH`` for the Python processes tests start (manage.py, gunicorn, workers, writers).

A child must import ``offer_realtime`` (and ``tests``, ``hotel``) from where the pytest
process does: the tree in a checkout (``PYTHONPATH=$PWD:...`` or setup.cfg's ``pythonpath``),
the installed package under nox, which puts the tree only after site-packages (see
noxfile.py; ``tests/settings.py`` fails a process that gets it wrong). So the child gets
this process's ``sys.path``, in order. Start it from a script (``manage.py``) or with a
``cwd`` that holds no ``offer_realtime``: ``python -m`` and ``python -c`` put the working
directory first on ``sys.path``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def child_pythonpath(*first: str | Path) -> str:
    """``first`` (e.g. a project of the child's own), then this process's ``sys.path``."""
    return os.pathsep.join(dict.fromkeys([*map(str, first), *(path for path in sys.path if path)]))
