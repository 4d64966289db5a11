"""`python -m dreamscope` runs the CLI."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while starting up: no traceback, as at any other moment
    print("error: interrupted; nothing was written", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
