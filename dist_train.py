#!/usr/bin/env python
"""Train a LitePose supernet or fixed network (CPU, one GPU, or many through torchrun).

Not yet available: this command arrives with issue #3. It exits with an error
instead of pretending to work.
"""

import sys


def main():
    print("error: dist_train.py is not yet available (issue #3)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
