"""`python -m signoff`: the `signoff` command."""

import sys

from signoff.cli.main import main

sys.exit(main())
