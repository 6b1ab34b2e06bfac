"""Where the project is: bcp.yaml, experiments/, reports/ and the default stack home live under it."""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
