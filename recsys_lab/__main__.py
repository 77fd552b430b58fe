"""``python -m recsys_lab``: the ``recsys-lab`` command."""
import sys

from .cli import main

sys.exit(main())
