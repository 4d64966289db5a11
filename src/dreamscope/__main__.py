"""`python -m dreamscope` runs the CLI."""

import sys

from .cli import main

sys.exit(main())
