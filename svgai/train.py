"""Train the SVG AI models and write the approved config.

    python -m svgai.train --model-dir DIR --config PATH [--model-version V] [--seed N]

Trains deterministically into DIR (files + SHA-256 manifest), writes the config with its approved
checksum if the config file does not exist yet, and prints one line with the time taken.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from svgai.config import ConfigError, default_config, load_config, write_config
from svgai.models import DEFAULT_SEED, ModelError, train_and_save

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m svgai.train", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="folder to write the models and manifest into")
    parser.add_argument("--config", required=True, help="config file to write if absent (plus <config>.sha256)")
    parser.add_argument("--model-version", default="1.0.0", help="version recorded in the manifest (default 1.0.0)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"training seed (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)

    if not args.model_version.strip():
        parser.error("--model-version must not be empty")
    start = time.perf_counter()
    try:
        # Check an existing config before spending time on training.
        existing = load_config(args.config) if os.path.exists(args.config) else None
        manifest = train_and_save(args.model_dir, model_version=args.model_version, seed=args.seed)
        if existing is not None:
            config_note = f"kept existing config {args.config}"
            if existing["model_version"] != args.model_version:
                config_note += f" (it expects model_version {existing['model_version']}, not {args.model_version})"
        else:
            write_config(args.config, default_config(args.model_version))
            config_note = f"wrote config {args.config}"
    except (OSError, ConfigError, ModelError) as exc:
        print(f"svgai.train: error: {exc}", file=sys.stderr)
        return 1
    elapsed_s = time.perf_counter() - start
    print(
        f"trained models {manifest['model_version']} into {args.model_dir} "
        f"({len(manifest['files'])} files); {config_note}; took {elapsed_s:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
