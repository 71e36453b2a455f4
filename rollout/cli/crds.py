"""`rollout crds`: print or write the CustomResourceDefinitions generated from the API models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rollout.api.crd import render_crds


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "crds",
        help="print or write the knrollout.dev CRDs generated from the API models",
        description="Generate the CustomResourceDefinitions of knrollout.dev from the pydantic models.",
    )
    parser.add_argument("--output-dir", type=Path, help="write one file per CRD into this directory")
    parser.add_argument(
        "--check", action="store_true", help="with --output-dir: exit 1 if the files there differ"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files = render_crds()
    if args.output_dir is None:
        if args.check:
            print("rollout crds: --check needs --output-dir", file=sys.stderr)
            return 2
        sys.stdout.write("---\n".join(files.values()))
        return 0
    out: Path = args.output_dir
    stale = [
        name for name, text in files.items() if not (out / name).is_file() or (out / name).read_text() != text
    ]
    if args.check:
        for name in stale:
            print(f"{out / name}: differs from the models; run `rollout crds --output-dir {out}`")
        return 1 if stale else 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / name).write_text(text)
            print(f"wrote {out / name}")
    except OSError as err:
        print(f"rollout crds: --output-dir {out}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0
