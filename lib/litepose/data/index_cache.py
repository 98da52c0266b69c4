"""The packed annotation index built once per run and shared by its processes.

Every training process needs the training set's ``PackedAnnotations``. Built from the annotation
file, that is seconds of JSON parsing and over a GiB of memory per process at COCO's size (COCO's
training file is 238 MB), paid by each of a node's processes and again after each restart. With
a cache folder (the trainer's is ``annotation_index/`` in the run's output folder, switched by
``DATASET.INDEX_CACHE``):

- the first process builds the index and saves it (``PackedAnnotations.save``: ``.npy`` buffers
  and ``index.json``), in a temporary folder renamed into place, so no process ever sees half
  an index; the others wait on a lock file meanwhile (an ``flock``, best effort: without it each
  builds its own and one rename wins, correct all the same);
- every process then memory-maps the saved buffers read-only (``PackedAnnotations.load``): the
  processes of a node and their forked loader workers share one copy in the page cache;
- an entry is used only where its key matches: the annotation file's resolved path, inode, size
  and modification time (nanoseconds), the joint count its keypoints are checked against, the
  index format, the code that checks and packs it (a digest of ``coco_format``'s source) and the
  Python version. A missing, truncated or altered entry (each buffer's CRC-32 is checked) is
  rebuilt with a warning, never trusted; entries of earlier versions of the same annotation file
  are removed once the new one is in place, so the folder holds one entry per file.

The cache never writes beside the dataset, and callers that pass no folder parse the file as
before.
"""

import errno
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import tempfile
import time
import warnings

from . import coco_format
from .coco_format import IndexFileError, KeypointAnnotations, PackedAnnotations, check_dataset_paths

CACHE_DIR_NAME = "annotation_index"
_TEMPORARY = ".tmp"


def _code_digest():
    """Of ``coco_format``'s source, which checks and packs the annotations: an index built by
    other code is not used."""
    try:
        with open(coco_format.__file__, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()[:16]
    except (OSError, TypeError):  # no source file (a frozen install): the format number alone
        return None


def cache_key(ann_file, num_joints):
    """What an index of ``ann_file`` checked for ``num_joints`` joints was built from."""
    real = os.path.realpath(ann_file)
    info = os.stat(real)
    return {"file": real, "inode": info.st_ino, "size": info.st_size, "mtime_ns": info.st_mtime_ns,
            "num_joints": int(num_joints),
            "format": PackedAnnotations.FORMAT, "code": _code_digest(), "python": platform.python_version()}


def entry_name(key):
    """``(prefix, name)``: the prefix names the annotation file (its entries share it), the name
    the whole key."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(key["file"]))[:80]
    prefix = f"{stem}-{hashlib.sha256(key['file'].encode('utf-8')).hexdigest()[:10]}"
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return prefix, f"{prefix}-{digest}"


def _say(log, message):
    if log is not None:
        log(message)


def _warn(warn, message):
    if warn is not None:
        warn(message)
    else:
        warnings.warn(message, stacklevel=3)


class _BuildLock:
    """An exclusive ``flock`` on ``path`` while one process builds; any failure to take it
    (no locking on this file system) lets the caller go on without it."""

    def __init__(self, path, log):
        self.path, self.log, self.fd = path, log, None

    def __enter__(self):
        try:
            import fcntl

            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                _say(self.log, "waiting for another process to build the annotation index")
                fcntl.flock(self.fd, fcntl.LOCK_EX)
        except (ImportError, OSError):
            if self.fd is not None:
                os.close(self.fd)
            self.fd = None
        return self

    def __exit__(self, *exc_info):
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
        return False


def _load(entry, ann_file, image_dir, info, key):
    """The entry's index, None where there is none, or the ``IndexFileError`` it raised."""
    if not os.path.isdir(entry):
        return None
    try:
        return PackedAnnotations.load(entry, ann_file, image_dir, info, key)
    except IndexFileError as exc:
        return exc


def _remove(path):
    shutil.rmtree(path, ignore_errors=True)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process
    return True


def _remove_stale(cache_dir, prefix, keep):
    """Remove the other entries of the same annotation file, and temporaries that processes of
    this host that no longer run left behind."""
    host = socket.gethostname()
    for name in os.listdir(cache_dir):
        path = os.path.join(cache_dir, name)
        if name.startswith(f"{prefix}-") and name != keep:
            _remove(path)
        else:
            # .<entry name>.<host>.<pid>.<random>.tmp (a host name may hold dots, the random part none)
            match = re.fullmatch(re.escape(f".{prefix}-") + r"[0-9a-f]{16}\.(.+)\.(\d+)\.[^.]+" + re.escape(_TEMPORARY),
                                 name)
            if match and match.group(1) == host and not _process_alive(int(match.group(2))):
                _remove(path)


def _write_entry(packed, cache_dir, entry, key):
    """Save ``packed`` as ``entry``: written in a temporary folder, then renamed into place.
    ``OSError`` where it cannot be written; where another process put a valid entry there
    first, that one stays."""
    name = os.path.basename(entry)
    temporary = tempfile.mkdtemp(prefix=f".{name}.{socket.gethostname()}.{os.getpid()}.", suffix=_TEMPORARY,
                                 dir=cache_dir)
    try:
        packed.save(temporary, key)
        if os.path.lexists(entry):  # an unusable entry: moved aside, then removed
            aside = tempfile.mkdtemp(prefix=f".{name}.{socket.gethostname()}.{os.getpid()}.", suffix=_TEMPORARY,
                                     dir=cache_dir)
            try:
                os.replace(entry, aside)
            except OSError:
                pass
            _remove(aside)
        try:
            os.replace(temporary, entry)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # Another process (no lock on this file system) put its entry there in between.
    finally:
        _remove(temporary)


def cached_annotation_index(ann_file, image_dir, info, cache_dir, log=None, warn=None):
    """The ``PackedAnnotations`` of every image of ``ann_file`` (images in ``image_dir``, joints
    ``info``), memory-mapped from ``cache_dir`` where an entry for the file's current state is
    there; built from the file and saved there first otherwise (one process at a time).

    The samples it gives are those of ``KeypointAnnotations(ann_file, image_dir, info)``. Bad
    annotations raise its ``DataError``. A cache entry that cannot be used or written costs a
    warning (``warn``, default ``warnings.warn``), never the run: the index is then this
    process's own. ``log`` receives progress lines (building, waiting)."""
    ann_file, image_dir, cache_dir = os.fspath(ann_file), os.fspath(image_dir), os.fspath(cache_dir)
    check_dataset_paths(ann_file, image_dir)
    key = cache_key(ann_file, info.num_joints)
    prefix, name = entry_name(key)
    entry = os.path.join(cache_dir, name)
    found = _load(entry, ann_file, image_dir, info, key)
    if isinstance(found, PackedAnnotations):
        return found
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as exc:
        _warn(warn, f"cannot create the annotation index cache {cache_dir} ({exc.strerror or exc}); "
                    "this process indexes the annotation file itself")
        return KeypointAnnotations(ann_file, image_dir, info).packed()
    with _BuildLock(os.path.join(cache_dir, f".{prefix}.lock"), log):
        again = _load(entry, ann_file, image_dir, info, key)  # built while this process waited?
        if isinstance(again, PackedAnnotations):
            return again
        problem = found or again
        if problem is not None:
            _warn(warn, f"annotation index cache {entry} cannot be used ({problem}); rebuilding it")
        _say(log, f"indexing {ann_file} into {cache_dir} (once per run; the run's processes share it)")
        started = time.perf_counter()
        packed = KeypointAnnotations(ann_file, image_dir, info).packed()
        if cache_key(ann_file, info.num_joints) != key:
            _warn(warn, f"{ann_file} changed while it was read; its index is not cached")
            return packed
        try:
            _write_entry(packed, cache_dir, entry, key)
            _remove_stale(cache_dir, prefix, name)
        except OSError as exc:
            _warn(warn, f"cannot write the annotation index cache {entry} ({exc.strerror or exc}); "
                        "this process keeps its own index")
            return packed
        _say(log, f"indexed {len(packed)} images in {time.perf_counter() - started:.1f} s")
    saved = _load(entry, ann_file, image_dir, info, key)
    if not isinstance(saved, PackedAnnotations):  # removed or changed since: keep the one built here
        _warn(warn, f"annotation index cache {entry} cannot be read back ({saved or 'gone'}); "
                    "this process keeps its own index")
        return packed
    return saved
