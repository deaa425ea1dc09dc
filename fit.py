"""GANFIT fitting: ``python fit.py [image=PATH] [out=DIR] [fitting=fast|default|paper] [texture=free|gan]``.

With no arguments it fits the public-domain astronaut portrait that scikit-image ships. See docs/fitting.md; the
same command is installed as ``ganfit-fit``. Exit codes: 0 done, 1 some photos failed, 2 usage, 130 Ctrl-C.
"""

import sys

from ganfit.launch import fit

if __name__ == "__main__":
    sys.exit(fit())
