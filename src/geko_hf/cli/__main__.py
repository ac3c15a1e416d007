"""`python -m geko_hf.cli` = `geko-hf`."""

import sys

from . import main

sys.exit(main())
