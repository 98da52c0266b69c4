"""Configuration: yacs defaults in the release's schema, loaded strictly.

``load_config(yaml_path, opts)`` merges a YAML file and ``KEY VALUE`` overrides into
the defaults and returns a frozen ``CfgNode``. A misspelt key, a value of the wrong
type, a number outside its range (``ranges.py``: a negative learning rate, zero people
per image) or an inconsistent setting raises ``ConfigError`` with one line naming the key.

A config file is at most ``MAX_CONFIG_BYTES`` (1 MiB), nests at most ``MAX_CONFIG_DEPTH``
levels and expands to at most ``MAX_CONFIG_VALUES`` values once its YAML aliases are
followed, so a small hostile file (nested aliases, "billion laughs") cannot exhaust memory.
"""

import ast
import difflib
import os
import warnings

import yaml
from yacs.config import CfgNode

from ..errors import ConfigError
from ..utils.io import read_text
from .defaults import COMPATIBILITY_KEYS, default_config
from .model_extras import MODEL_EXTRAS
from .ranges import check_ranges

MAX_CONFIG_BYTES = 2**20
MAX_CONFIG_DEPTH = 16
MAX_CONFIG_VALUES = 100_000

__all__ = ["load_config", "default_config", "config_for_model", "MODEL_EXTRAS"]

# Lists in the release's schema that it also accepts as a single scalar.
_PER_OUTPUT_KEYS = (
    ("LOSS", "WITH_HEATMAPS_LOSS"),
    ("LOSS", "HEATMAPS_LOSS_FACTOR"),
    ("LOSS", "WITH_AE_LOSS"),
    ("LOSS", "PUSH_LOSS_FACTOR"),
    ("LOSS", "PULL_LOSS_FACTOR"),
    ("TEST", "WITH_HEATMAPS"),
    ("TEST", "WITH_AE"),
)


def config_for_model(name):
    """Defaults with the ``MODEL.EXTRA`` schema of model ``name`` (mutable)."""
    if name not in MODEL_EXTRAS:
        known = ", ".join(sorted(MODEL_EXTRAS))
        raise ConfigError(f"MODEL.NAME '{name}' is not a model of this project (known: {known})")
    cfg = default_config()
    cfg.MODEL.NAME = name
    cfg.MODEL.EXTRA = MODEL_EXTRAS[name].clone()
    return cfg


def load_config(yaml_path=None, opts=()):
    """Load ``yaml_path`` (may be None for the defaults) plus ``opts`` overrides.

    ``opts`` is a flat sequence ``[KEY, VALUE, KEY, VALUE, ...]`` as typed after the
    options of the scripts (``TEST.MODEL_FILE ckpt.pth``). Returns a frozen CfgNode.
    """
    data = _read_yaml(yaml_path) if yaml_path else {}
    source = os.path.basename(yaml_path) if yaml_path else "overrides"
    overrides = _pairs(opts)

    model = data.get("MODEL")
    model_name = model.get("NAME", default_config().MODEL.NAME) if isinstance(model, dict) else default_config().MODEL.NAME
    for key, value in overrides:
        if key == "MODEL.NAME":
            model_name = _decode(value)
    if not isinstance(model_name, str):
        raise ConfigError(f"config key MODEL.NAME must be a model name, got {model_name!r}")
    cfg = config_for_model(model_name)

    _merge(data, cfg, [], source)
    for key, value in overrides:
        _set_override(cfg, key, _decode(value))

    _finalize(cfg)
    if yaml_path:
        cfg.MODEL.ARCH = _resolve_path(cfg.MODEL.ARCH, yaml_path, "MODEL.ARCH")
    _warn_compatibility_keys(cfg, source)
    cfg.freeze()
    return cfg


def _resolve_path(path, yaml_path, key):
    """A relative path of a config file: against the current folder, else against the config
    file's folder and the folders above it (the release's files name ``mobile_configs/...``
    from the repository root, so a script run elsewhere still finds them)."""
    if not path or os.path.isabs(path) or os.path.exists(path):
        return path
    folder = os.path.dirname(os.path.abspath(yaml_path))
    tried = [os.getcwd()]
    while True:
        candidate = os.path.join(folder, path)
        if os.path.exists(candidate):
            return candidate
        tried.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    raise ConfigError(f"config key {key}: {path} not found in the current folder ({tried[0]}) nor beside the "
                      f"config or above it ({tried[1]} and up)")


class CompatibilityKeyWarning(UserWarning):
    """A key kept for the release's files was set to a value that changes nothing."""


def _flat_items(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _flat_items(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _warn_compatibility_keys(cfg, source):
    defaults = dict(_flat_items(default_config()))
    for key, value in _flat_items(cfg):
        kept = any(key == name or (name.endswith(".") and key.startswith(name)) for name in COMPATIBILITY_KEYS)
        if kept and key in defaults and value != defaults[key]:
            # Python's default filter shows each of these once per process.
            warnings.warn(f"config key {key} ({value!r}) is accepted for compatibility with the release's files "
                          "and has no effect", CompatibilityKeyWarning, stacklevel=3)


class _StrictLoader(yaml.SafeLoader):
    """YAML loader that refuses a key given twice (PyYAML silently keeps the last one) and
    collections nested deeper than ``MAX_CONFIG_DEPTH``."""

    _depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_CONFIG_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_CONFIG_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a key must be a name, not a list or mapping",
                                                    key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path):
    text = read_text(path, ConfigError, "config file", MAX_CONFIG_BYTES)
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested deeper than {MAX_CONFIG_DEPTH} levels") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {str(exc).splitlines()[0][:200] if str(exc) else exc!r}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys, got {type(data).__name__}")
    if _expands_beyond(data, MAX_CONFIG_VALUES):
        raise ConfigError(f"{path}: the config expands to more than {MAX_CONFIG_VALUES} values once its YAML "
                          "aliases are followed (nested aliases?)")
    return data


def _expands_beyond(data, limit):
    """Whether ``data`` holds more than ``limit`` values counting every reference (YAML
    aliases share one object: a walk that follows them visits it each time)."""
    count, stack = 0, [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (list, tuple, set)):
            stack.extend(node)
    return False


def _pairs(opts):
    opts = list(opts or ())
    if len(opts) % 2:
        raise ConfigError(
            f"config overrides must be KEY VALUE pairs; '{opts[-1]}' has no value"
        )
    return list(zip(opts[0::2], opts[1::2]))


def _decode(value):
    """Strings from the command line or YAML become Python literals when they parse as one
    ('4e-3', '(True, False)', '[1, 2]'), otherwise stay strings (paths)."""
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return value


def _unknown_key(node, key, full_key):
    close = difflib.get_close_matches(key, list(node.keys()), n=1)
    hint = f" (did you mean {'.'.join(full_key.split('.')[:-1] + [close[0]])}?)" if close else ""
    return ConfigError(f"unknown config key {full_key}{hint}")


def _coerce(value, default, full_key):
    """The value with the default's type, or ConfigError. Lossless conversions only."""
    if isinstance(default, CfgNode):
        raise ConfigError(f"config key {full_key} is a section; give its keys, not a value")
    if default is None or value is None or type(value) is type(default):
        return value
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(default)(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = type(default).__name__
    raise ConfigError(
        f"config key {full_key} must be {expected} (like {default!r}), got {value!r} ({type(value).__name__})"
    )


def _merge(data, node, path, source):
    for key, raw in data.items():
        full_key = ".".join(path + [str(key)])
        if key not in node:
            raise _unknown_key(node, str(key), full_key)
        value = _decode(raw)
        if isinstance(node[key], CfgNode):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: config key {full_key} is a section; give its keys, not {value!r}")
            _merge(value, node[key], path + [str(key)], source)
        else:
            node[key] = _coerce(value, node[key], full_key)


def _set_override(cfg, full_key, value):
    node = cfg
    parts = full_key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, CfgNode) or part not in node:
            parent = node if isinstance(node, CfgNode) else CfgNode()
            raise _unknown_key(parent, part, ".".join(parts[: depth + 1]))
        if depth < len(parts) - 1:
            node = node[part]
    if isinstance(value, dict):
        _merge(value, node[parts[-1]], parts, "overrides")
    else:
        node[parts[-1]] = _coerce(value, node[parts[-1]], full_key)


def _finalize(cfg):
    """The release's post-processing (DATA_DIR joins, scalar per-output keys) and the
    consistency checks its ``check_config`` asserted, as clear errors."""
    if cfg.DATA_DIR:
        if cfg.DATASET.ROOT and not os.path.isabs(cfg.DATASET.ROOT):
            cfg.DATASET.ROOT = os.path.join(cfg.DATA_DIR, cfg.DATASET.ROOT)
        for section, key in (("MODEL", "PRETRAINED"), ("TEST", "MODEL_FILE")):
            value = cfg[section][key]
            if value and not os.path.isabs(value):
                cfg[section][key] = os.path.join(cfg.DATA_DIR, value)

    if not isinstance(cfg.DATASET.OUTPUT_SIZE, (list, tuple)):
        cfg.DATASET.OUTPUT_SIZE = [cfg.DATASET.OUTPUT_SIZE]
    for section, key in _PER_OUTPUT_KEYS:
        value = cfg[section][key]
        if not isinstance(value, (list, tuple)):
            cfg[section][key] = (value,)
        count = len(cfg[section][key])
        if count != cfg.LOSS.NUM_STAGES:
            raise ConfigError(
                f"{section}.{key} has {count} entries but LOSS.NUM_STAGES is {cfg.LOSS.NUM_STAGES}"
            )

    check_ranges(cfg)
    if cfg.DATASET.WITH_CENTER:
        raise ConfigError("DATASET.WITH_CENTER is not supported by the models of this project")
    if cfg.MODEL.NUM_JOINTS != cfg.DATASET.NUM_JOINTS:
        raise ConfigError(
            f"MODEL.NUM_JOINTS ({cfg.MODEL.NUM_JOINTS}) differs from DATASET.NUM_JOINTS ({cfg.DATASET.NUM_JOINTS})"
        )
    if cfg.MODEL.NUM_JOINTS <= 0:
        raise ConfigError(f"MODEL.NUM_JOINTS must be positive, got {cfg.MODEL.NUM_JOINTS}")
    if cfg.LOSS.AE_LOSS_TYPE not in ("exp", "max"):
        raise ConfigError(f"LOSS.AE_LOSS_TYPE must be 'exp' or 'max', got {cfg.LOSS.AE_LOSS_TYPE!r}")
    if cfg.DEVICE != "auto" and not (cfg.DEVICE == "cpu" or cfg.DEVICE.startswith("cuda")):
        raise ConfigError(f"DEVICE must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {cfg.DEVICE!r}")
