"""`python -m harness.cli ...` is `gameday ...`."""
import sys

from harness.cli.main import main

sys.exit(main())
