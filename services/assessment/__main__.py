"""`python -m services.assessment` runs the assessment service;
`python -m services.assessment rebuild-summaries [--batch N]` rebuilds its live
summaries from the stored facts (rebuild.py), with the service stopped."""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import argparse
import sys

from gridwork_common.config import settings_or_exit
from gridwork_common.mongo import new_client
from gridwork_common.run import run_service
from services.assessment import rebuild
from services.assessment.service import AssessmentService


def rebuild_summaries(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.assessment rebuild-summaries")
    parser.add_argument("--batch", type=int, default=rebuild.BATCH, help="facts a transaction")
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error("--batch: must be at least 1")
    settings = settings_or_exit()

    def progress(read: int) -> None:  # about every 100,000 facts
        if read % 100_000 < args.batch:
            print(f"{read:,} facts folded", flush=True)

    client = new_client(settings, app_name="assessment-rebuild")
    try:
        db = client[settings.database_name("assessment")]
        done = rebuild.rebuild_summaries(db, args.batch, progress)
        print(f"rebuilt: {done['read']:,} facts read, {done['stored']:,} stored again")
    finally:
        client.close()


if len(sys.argv) > 1 and sys.argv[1] == "rebuild-summaries":
    rebuild_summaries(sys.argv[2:])
elif len(sys.argv) > 1:
    sys.exit("usage: python -m services.assessment [rebuild-summaries [--batch N]]")
else:
    run_service(AssessmentService)
