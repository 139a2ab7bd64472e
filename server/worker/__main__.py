"""`python -m server.worker [--workers N] [--threads]`: the same consumer as `paysheet worker`."""

from __future__ import annotations

import argparse

from server.settings import get_settings
from server.worker.consumer import run_worker


def main() -> None:
    parser = argparse.ArgumentParser(description="Paysheet run worker (Huey consumer)")
    parser.add_argument("--workers", type=int, default=None, help="worker count")
    parser.add_argument("--threads", action="store_true", help="thread workers, not processes")
    args = parser.parse_args()
    run_worker(get_settings(), args.workers, "thread" if args.threads else "process")


if __name__ == "__main__":
    main()
