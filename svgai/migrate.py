"""Schema migration job: `python -m svgai.migrate --dsn DSN` creates the application's tables.
Run once by the deployment before the API starts (a Kubernetes Job would do the same)."""
from __future__ import annotations

import argparse
import sys

import psycopg

from svgai.db import ensure_schema


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dsn", required=True)
    args = ap.parse_args(argv)
    try:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            ensure_schema(conn)
    except psycopg.Error as e:
        print(f"migrate: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
