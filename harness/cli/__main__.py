"""`python -m harness.cli ...` is `gameday ...`."""
import sys

from harness.cli.main import main

if __name__ == "__main__":  # a process spawned by `report verify` imports this module again
    sys.exit(main())
