"""``python -m litepose``: the ``litepose`` command (``litepose.commands``)."""
from litepose.commands import main

if __name__ == "__main__":
    main()
