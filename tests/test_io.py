import os
import stat

from litepose.utils.io import atomic_write_text


def test_atomic_write_replaces_and_uses_normal_permissions(tmp_path):
    path = tmp_path / "out.json"
    atomic_write_text(str(path), "one")
    atomic_write_text(str(path), "two")
    assert path.read_text() == "two"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left behind
