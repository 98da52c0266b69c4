#!/usr/bin/env python
"""Extract a sub-network's weights from a trained supernet.

Not yet available: this command arrives with issue #5. It exits with an error
instead of pretending to work.
"""

import sys


def main():
    print("error: weight_transfer.py is not yet available (issue #5)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
