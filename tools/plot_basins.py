#!/usr/bin/python3
"""Deprecated entry point, kept for one release: the plots are now the module
basinvol.plot of the Python package (`python3 -m basinvol.plot ...`;
docs/python.md). This shim loads it (from the source tree when no
basinvol package is on the path) and forwards."""
import os
import sys

# The source tree last: a basinvol package already on the path (the build's,
# with its compiled core, or an installed one) stays the one imported.
sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

from basinvol.plot import *  # noqa: E402,F401,F403
from basinvol.plot import main  # noqa: E402

if __name__ == "__main__":
    print("basinvol: tools/plot_basins.py is deprecated; use python3 -m basinvol.plot", file=sys.stderr)
    sys.exit(main())
else:
    print("basinvol: the module plot_basins is deprecated; use basinvol.plot", file=sys.stderr)
