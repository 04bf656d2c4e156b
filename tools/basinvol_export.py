#!/usr/bin/python3
"""Deprecated entry point, kept for one release: the exporter is now the
module basinvol.export of the Python package (`from basinvol.export import
...`, `python3 -m basinvol.export ...`; docs/python.md). This shim loads it
(from the source tree when no basinvol package is on the path) and forwards
everything."""
import os
import sys

# The source tree last: a basinvol package already on the path (the build's,
# with its compiled core, or an installed one) stays the one imported.
sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

from basinvol.export import *  # noqa: E402,F401,F403
from basinvol.export import __all__, main  # noqa: E402,F401

if __name__ == "__main__":
    print("basinvol: tools/basinvol_export.py is deprecated; use python3 -m basinvol.export", file=sys.stderr)
    sys.exit(main())
else:
    print("basinvol: the module basinvol_export is deprecated; use basinvol.export", file=sys.stderr)
