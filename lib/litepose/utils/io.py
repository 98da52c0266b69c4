"""Files in and out, safely.

- Atomic writes: a crash or a full disk never leaves a half-written file behind; a write that
  fails is one ``OutputError`` line naming the file and the reason (``No space left on
  device``), and the previous file, if any, is kept.
- ``load_json``: the one JSON reader of the project (annotation, results, architecture, search
  state and latency-table files): a size and nesting limit, and one line naming the file for
  anything that is not valid JSON. ``read_text`` is its bounded UTF-8 read, which the YAML config
  reader shares.
- ``lock_folder``: one run per output folder (an ``flock`` on a lock file there, which the
  operating system releases when the process ends, however it ends).
- ``check_output_file``: the one check, before any work, of a file a command will write (exists
  without --force, an input of the same run even with --force, a folder in its place, an
  unwritable or impossible folder), one line each.
"""

import errno
import json
import os
import socket
import tempfile

# Nesting depth of any JSON file the project reads (COCO annotation files have 5 levels).
MAX_JSON_DEPTH = 32
# Default size limit of a JSON file; callers pass their own (annotation files are large).
MAX_JSON_BYTES = 64 * 2**20
LOCK_NAME = ".litepose.lock"
VALID_LOCK_NAME = ".litepose-valid.lock"  # valid.py's own: evaluating while the run trains is fine


def _reason(exc):
    return exc.strerror or str(exc) or type(exc).__name__


def _output_error(message):
    from ..errors import OutputError

    return OutputError(message)


def _default_mode():
    """The permissions a plain ``open(path, 'w')`` would give (mkstemp makes files 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _atomic_write(path, write):
    path = os.fspath(path)
    if os.path.isdir(path):
        raise _output_error(f"cannot write {path}: it is a folder")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _output_error(f"cannot write {path}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_path, _default_mode())
        os.replace(tmp_path, path)
    except BaseException as exc:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        if isinstance(exc, OSError):
            kept = "; the previous file is kept" if os.path.exists(path) else "; nothing was written"
            raise _output_error(f"cannot write {path}: {_reason(exc)}{kept}") from None
        raise


def atomic_write_bytes(path, data):
    _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


class _RecordingWriter:
    """A file for ``torch.save`` that remembers the ``OSError`` of a failed write: PyTorch's zip
    writer swallows it and raises ``RuntimeError("... unexpected pos ...")`` instead, which would
    hide a full disk behind a traceback."""

    def __init__(self, handle):
        self.handle = handle
        self.error = None

    def write(self, data):
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self):
        self.handle.flush()


def atomic_torch_save(obj, path):
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``; a write
    that fails inside PyTorch (a full disk) is the same one ``OutputError`` line as any other."""
    import torch

    def write(handle):
        writer = _RecordingWriter(handle)
        try:
            torch.save(obj, writer)
        except RuntimeError:
            if writer.error is not None:
                raise writer.error from None
            raise

    _atomic_write(path, write)


def remove_stale_temporaries(directory, names):
    """Delete the temporary files that atomic writes of ``names`` (file names in ``directory``)
    left behind when their process was killed. Only for a folder no other process writes: call
    it while holding the folder's ``lock_folder``."""
    if not os.path.isdir(directory):
        return []
    prefixes = tuple(f".{name}." for name in names)
    removed = []
    for name in os.listdir(directory):
        if name.startswith(prefixes) and name.endswith(".tmp"):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except OSError:
                pass
    return removed


def ensure_writable_dir(path, what="output folder"):
    """Create ``path`` if needed and check that files can be written there: a ``ConfigError``
    naming it otherwise, before any long work starts."""
    from ..errors import ConfigError

    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{what} is not writable: {path} ({exc.strerror or exc})") from None
    return path


def same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file: the same inode (hard links, bind mounts),
    or, where either does not exist, the same resolved path (symbolic links followed)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return os.path.realpath(os.fspath(a)) == os.path.realpath(os.fspath(b))


def _is_inside(path, folder):
    try:
        return os.path.commonpath([os.path.realpath(path), os.path.realpath(folder)]) == os.path.realpath(folder)
    except ValueError:
        return False


def check_output_file(path, force=False, what="output file", *, folder=False, force_option="--force", error=None,
                      inputs=()):
    """Before any work: ``path`` can be written (its folder exists or can be made, and is
    writable), is not a folder, and does not exist unless ``force``: the one check of every
    command that writes a file. Otherwise one line, an ``error`` (a ``LitePoseError`` subclass,
    default ``OutputError``) naming the path and what to do.

    ``what``: how the message names the output (an option such as ``--output``, or ``report``;
    None: the path alone). ``folder``: the output is itself a folder (Core ML's .mlpackage), so an
    existing folder is an existing output. ``force_option``: the option the message offers for
    overwriting; None for a command that never overwrites (the message asks for a new name).
    ``inputs``: the files (and folders) the same run reads: the output may be none of them (the
    same file by inode or resolved path, or a path inside an input folder when ``folder``), with
    or without ``force``: ``--force`` replaces an old output, never an input of the run."""
    from ..errors import OutputError

    error = error or OutputError
    path = os.fspath(path)
    label = f"{what} " if what else ""
    for source in inputs:
        if source is None or isinstance(source, (bytes, bytearray)):
            continue
        source = os.fspath(source)
        if same_file(path, source) or (folder and os.path.isdir(path) and _is_inside(source, path)):
            raise error(f"{label}{path} is an input of this run ({source}): it is never overwritten, even with "
                        f"--force; give another output name")
    if os.path.isdir(path) and not folder:
        raise error(f"{label}{path} is a folder; give a file name")
    if os.path.lexists(path) and not force:
        if force_option:
            raise error(f"{label}{path} already exists (pass {force_option} to overwrite it)")
        raise error(f"{label}{path} already exists; give a new file name")
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise error(f"cannot write {label}{path}: {directory} is not a folder")
    try:
        ensure_writable_dir(directory)
    except Exception as exc:  # ConfigError: re-raised as what it is here, an output problem
        raise error(f"cannot write {label}{path}: {exc}") from None
    return path


def file_sha256(path, chunk=1 << 20):
    """Hex SHA-256 of a file's bytes (what a cached result was computed from)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def path_problem(path, what="file"):
    """Why ``path`` cannot be read as a file ("... not found", "... is a folder"), or None."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return f"{what} is a folder, not a file: {path}"
    if not os.path.exists(path):
        return f"{what} not found: {path}"
    if not os.path.isfile(path):
        return f"{what} is not a regular file: {path}"
    return None


def json_depth_exceeds(data, limit=MAX_JSON_DEPTH):
    """Whether lists and dicts in ``data`` nest deeper than ``limit`` (iteratively: a deep
    value never meets Python's recursion limit here)."""
    stack = [(data, 1)]
    while stack:
        node, level = stack.pop()
        if level > limit:
            return True
        kind = type(node)
        if kind is dict:
            children = node.values()
        elif kind is list:
            children = node
        else:
            continue
        for child in children:
            if type(child) in (list, dict):
                stack.append((child, level + 1))
    return False


def read_text(path, error=None, what="file", max_bytes=MAX_JSON_BYTES):
    """The UTF-8 text of a file the project parses (JSON, YAML): ``error`` (a ``LitePoseError``
    subclass, default ``DataError``) with one line naming ``path`` if it is missing, a folder,
    larger than ``max_bytes``, not UTF-8 or unreadable."""
    from ..errors import DataError

    error = error or DataError
    path = os.fspath(path)
    problem = path_problem(path, what)
    if problem:
        raise error(problem)
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise error(f"{path}: {what} of {size / 2**20:.1f} MiB is larger than the {max_bytes / 2**20:.0f} MiB "
                        "this project reads")
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: cannot read {what}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except MemoryError:
        raise error(f"{path}: {what} does not fit in memory") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {_reason(exc)}") from None


def load_json(path, error=None, what="JSON file", max_bytes=MAX_JSON_BYTES, max_depth=MAX_JSON_DEPTH):
    """Read a JSON file: ``error`` (a ``LitePoseError`` subclass, default ``DataError``) with
    one line naming ``path`` if it is missing, a folder, larger than ``max_bytes``, not UTF-8,
    not valid JSON, or nested deeper than ``max_depth``."""
    from ..errors import DataError

    error = error or DataError
    path = os.fspath(path)
    text = read_text(path, error, what, max_bytes)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise error(f"{path}: invalid {what}: nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise error(f"{path}: invalid JSON: {str(exc).splitlines()[0][:200]}") from None
    except MemoryError:
        raise error(f"{path}: {what} does not fit in memory") from None
    if json_depth_exceeds(data, max_depth):
        raise error(f"{path}: invalid {what}: nested deeper than {max_depth} levels")
    return data


# ------------------------------------------------------------------------------------ locks
_HELD = {}  # lock file (real path) -> [descriptor, holders in this process]


class FolderLock:
    """An exclusive lock on a folder, held by this process until ``release()`` (or its end).
    Taking it again in the same process shares it (released with the last holder)."""

    def __init__(self, path):
        self.path = path
        self.held = path is not None

    def release(self):
        if not self.held:
            return
        self.held = False
        entry = _HELD.get(self.path)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _HELD[self.path]
            try:
                os.close(entry[0])  # closing the descriptor releases the flock
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _lock_holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 200).decode("utf-8", "replace").split()
    except OSError:
        return None
    if not text or not text[0].isdigit():
        return None
    return f"process {text[0]}" + (f" on {text[1]}" if len(text) > 1 and text[1] != socket.gethostname() else "")


def lock_folder(directory, what="output folder", name=LOCK_NAME, instead="another OUTPUT_DIR"):
    """Take ``directory``'s lock (file ``name`` in it) or raise ``OutputError`` naming the
    process that holds it. The lock is an ``flock``: the operating system drops it when the
    holding process ends, even by SIGKILL, so no lock is ever left stale. ``instead``: what the
    message offers in place of the folder."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        return FolderLock(None)
    directory = os.fspath(directory)
    lock_path = os.path.realpath(os.path.join(directory, name))
    entry = _HELD.get(lock_path)
    if entry is not None:
        entry[1] += 1
        return FolderLock(lock_path)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise _output_error(f"cannot lock {what} {directory}: {_reason(exc)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _lock_holder(fd) if exc.errno in (errno.EAGAIN, errno.EACCES) else None
        os.close(fd)
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise _output_error(f"cannot lock {what} {directory}: {_reason(exc)}") from None
        raise _output_error(f"{what} {directory} is in use by {holder or 'another process'} (another run writes "
                            f"there); wait for it to end, or use {instead}") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    except OSError:
        pass  # the lock holds even if its note could not be written (a full disk)
    _HELD[lock_path] = [fd, 1]
    return FolderLock(lock_path)
