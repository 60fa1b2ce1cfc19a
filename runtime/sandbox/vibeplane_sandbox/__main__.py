"""`python -m vibeplane_sandbox` is `vibeplane-node`."""

import sys

from vibeplane_sandbox.cli import main

sys.exit(main())
