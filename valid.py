#!/usr/bin/env python
"""Evaluate a checkpoint on COCO or CrowdPose.

Not yet available: this command arrives with issue #4. It exits with an error
instead of pretending to work.
"""

import sys


def main():
    print("error: valid.py is not yet available (issue #4)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
