"""`python -m gridwork_backup export <directory>` writes the county's databases and media
(as the environment's settings name them, docs/configuration.md) into a new directory;
`python -m gridwork_backup import <directory>` restores them into empty databases and an
empty bucket. See docs/operations.md, "Backup and restore"."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gridwork_backup.county import BackupError, export_county, import_county
from gridwork_common.config import settings_or_exit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gridwork_backup")
    parser.add_argument("action", choices=("export", "import"))
    parser.add_argument("directory", type=Path)
    arguments = parser.parse_args(argv)
    settings = settings_or_exit()
    action = export_county if arguments.action == "export" else import_county
    try:
        manifest = action(settings, arguments.directory)
    except BackupError as exc:
        print(f"gridwork_backup: {exc}", file=sys.stderr)
        return 1
    documents = sum(
        entry["documents"]
        for collections in manifest["databases"].values()
        for entry in collections.values()
    )
    summary = {"documents": documents, "objects": len(manifest["objects"])}
    print(json.dumps({arguments.action: str(arguments.directory), **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
