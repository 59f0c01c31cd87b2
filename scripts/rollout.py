#!/usr/bin/env python3
"""Canary, promote and roll back a model's Cloud Run revisions, one command each.

The command line of the scripts/rollouts package (cli.py holds the usage);
standard library only, so it runs wherever python3 and gcloud do.
"""

import sys

from rollouts.cli import main  # scripts/ is this script's own folder, first on sys.path

if __name__ == "__main__":
    sys.exit(main())
