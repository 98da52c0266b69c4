"""A small explicit registry from ``MODEL.NAME`` to a builder ``fn(cfg, arch) -> nn.Module``."""

from ..errors import ConfigError

_BUILDERS = {}


def register_model(name):
    """Decorator: ``@register_model("pose_mobilenet")`` on a ``builder(cfg, arch)``."""

    def decorator(builder):
        if name in _BUILDERS:
            raise ValueError(f"model name registered twice: {name}")
        _BUILDERS[name] = builder
        return builder

    return decorator


def model_names():
    return sorted(_BUILDERS)


def get_builder(name):
    if name not in _BUILDERS:
        raise ConfigError(f"MODEL.NAME '{name}' is not a registered model (known: {', '.join(model_names())})")
    return _BUILDERS[name]


def build_model(cfg, arch=None):
    """Build ``cfg.MODEL.NAME``. ``arch`` (a dict or a JSON path) selects the architecture
    of LitePose models; ``None`` takes ``cfg.MODEL.ARCH`` or else the search space's widest.
    For the supernet, the returned model has ``arch`` active."""
    return get_builder(cfg.MODEL.NAME)(cfg, arch)
