"""Rows of a measurement kept when it is interrupted: the harnesses that measure one
configuration after another (``benchmark_e2e``, ``track_eval``) append each finished row to a
list; on Ctrl-C the rows finished so far are written to ``--json`` too, and the command ends
with one line and exit status 130 (``litepose.errors.Interrupted`` through ``run_cli``)."""

import contextlib
import json


def write_rows(path, rows):
    """``rows`` as a JSON list at ``path`` (atomically; nothing when ``path`` is None)."""
    if path:
        from litepose.utils.io import atomic_write_text

        atomic_write_text(path, json.dumps(rows, indent=1) + "\n")


@contextlib.contextmanager
def kept_on_interrupt(rows, path):
    """Around the loop that fills ``rows``: Ctrl-C writes the finished rows to ``path`` and
    raises ``Interrupted`` saying how many were kept and where."""
    try:
        yield rows
    except KeyboardInterrupt:
        from litepose.errors import Interrupted

        write_rows(path, rows)
        kept = f"written to {path}" if path else "printed above"
        raise Interrupted(f"{len(rows)} finished row(s) {kept}") from None
