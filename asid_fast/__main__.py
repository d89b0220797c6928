"""``python -m asid_fast``: the ``asid-fast`` command."""
import sys

from .cli import main

sys.exit(main())
