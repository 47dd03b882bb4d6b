"""``python -m nprl`` (also what ``torchrun -m nprl`` runs)."""

import sys

from nprl.cli import main

sys.exit(main())
