import errno
import os
import stat

import pytest

from litepose.errors import ArchError, ConfigError, OutputError
from litepose.utils.io import atomic_write_text, check_output_file, read_text


def test_atomic_write_replaces_and_uses_normal_permissions(tmp_path):
    path = tmp_path / "out.json"
    atomic_write_text(str(path), "one")
    atomic_write_text(str(path), "two")
    assert path.read_text() == "two"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left behind


# ------------------------------------------------------------------ check_output_file: the one check
def _one_line(info):
    text = str(info.value)
    assert "\n" not in text
    return text


def test_an_existing_output_is_refused_without_force_and_kept(tmp_path):
    path = tmp_path / "out.pth"
    path.write_text("mine")
    with pytest.raises(OutputError) as info:
        check_output_file(path, what="--output")
    assert _one_line(info) == f"--output {path} already exists (pass --force to overwrite it)"
    assert path.read_text() == "mine"
    with pytest.raises(OutputError) as info:  # no label: the path alone
        check_output_file(path, what=None)
    assert _one_line(info) == f"{path} already exists (pass --force to overwrite it)"


def test_an_existing_output_is_accepted_with_force(tmp_path):
    path = tmp_path / "out.pth"
    path.write_text("mine")
    assert check_output_file(path, force=True, what="--output") == str(path)
    assert path.read_text() == "mine"  # the check writes nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pth"]  # its probe file is gone


def test_a_folder_where_a_file_is_expected_is_refused_even_with_force(tmp_path):
    for force in (False, True):
        with pytest.raises(OutputError) as info:
            check_output_file(tmp_path, force=force, what="--output")
        assert _one_line(info) == f"--output {tmp_path} is a folder; give a file name"


def test_an_output_that_is_a_folder_counts_as_existing(tmp_path):
    package = tmp_path / "m.mlpackage"
    package.mkdir()
    with pytest.raises(OutputError, match=r"^coreml output .*m\.mlpackage already exists \(pass --force"):
        check_output_file(package, what="coreml output", folder=True)
    assert check_output_file(package, force=True, what="coreml output", folder=True) == str(package)


def test_an_unwritable_parent_is_refused_before_any_work(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("tempfile.mkstemp", read_only)
    with pytest.raises(OutputError) as info:
        check_output_file(tmp_path / "out.json", what="--json")
    assert _one_line(info) == (f"cannot write --json {tmp_path / 'out.json'}: output folder is not writable: "
                               f"{tmp_path} (Read-only file system)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match=r"^cannot write --output .*ro/out\.pth: output folder is not writable"):
            check_output_file(folder / "out.pth", what="--output")
    finally:
        folder.chmod(0o700)


def test_a_missing_parent_is_made_and_a_file_in_the_way_is_named(tmp_path):
    path = tmp_path / "new" / "deeper" / "out.json"
    assert check_output_file(path) == str(path)
    assert (tmp_path / "new" / "deeper").is_dir() and not path.exists()
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError) as info:
        check_output_file(blocker / "out.json", what="--output")
    assert _one_line(info) == f"cannot write --output {blocker / 'out.json'}: {blocker} is not a folder"
    with pytest.raises(OutputError, match=r"^cannot write --output .*a_file/sub/out\.json: output folder is not "
                                          r"writable: .*\(Not a directory\)$"):
        check_output_file(blocker / "sub" / "out.json", what="--output")


def test_the_message_fits_the_command(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text("[]")
    with pytest.raises(OutputError) as info:  # a command without --force asks for another name
        check_output_file(path, what="--json", force_option=None)
    assert _one_line(info) == f"--json {path} already exists; give a new file name"
    with pytest.raises(OutputError) as info:
        check_output_file(path, what="--output")
    assert _one_line(info) == f"--output {path} already exists (pass --force to overwrite it)"
    with pytest.raises(ArchError, match="already exists"):  # a library function keeps its own error class
        check_output_file(path, what="architecture file", error=ArchError)


def test_read_text_is_one_line_for_each_problem_of_a_file(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("KEY: value\n")
    assert read_text(path, ConfigError, "config file") == "KEY: value\n"
    with pytest.raises(ConfigError, match=f"^config file not found: {tmp_path / 'none.yaml'}$"):
        read_text(tmp_path / "none.yaml", ConfigError, "config file")
    with pytest.raises(ConfigError, match=r"config file of 0\.0 MiB is larger than the 0 MiB this project reads"):
        read_text(path, ConfigError, "config file", max_bytes=4)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r": cannot read config file: not UTF-8 text \(invalid start byte at byte 0\)$"):
        read_text(path, ConfigError, "config file")
