"""``python -m sgdnoise`` runs the command line."""
import sys

from sgdnoise.cli import main

sys.exit(main())
