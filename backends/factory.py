"""Backends built from config: one object per configured backend name."""

from __future__ import annotations

from pathlib import Path

from myninja.backends.base import Backend
from myninja.config import (
    Config,
    EmbeddedBackendConfig,
    GatewayBackendConfig,
    ScriptedBackendConfig,
)
from myninja.errors import ConfigError


def make_backend(config: Config, name: str) -> Backend:
    if name not in config.backends:
        known = ", ".join(sorted(config.backends))
        raise ConfigError(f"unknown backend {name!r}", hint=f"configured backends: {known}")
    cfg = config.backends[name]
    if isinstance(cfg, EmbeddedBackendConfig):
        from myninja.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(
            name,
            cfg.model,
            threads=cfg.threads,
            n_ctx=cfg.n_ctx,
            seed=cfg.seed,
            parallel=cfg.parallel,
            prompt_cache=cfg.prompt_cache,
            lookup=cfg.lookup,
        )
    if isinstance(cfg, ScriptedBackendConfig):
        from myninja.backends.scripted import ScriptedBackend

        return ScriptedBackend.from_file(name, Path(cfg.script).expanduser())
    assert isinstance(cfg, GatewayBackendConfig)
    from myninja.backends.gateway import GatewayBackend
    from myninja.backends.keys import key_name, key_store

    api_key = key_store(config).get(key_name(name, cfg))
    return GatewayBackend.from_config(name, cfg, api_key=api_key)


def quick_gateway(config: Config, name: str) -> Backend:
    """Gateway backend NAME for a quick look (is it up, which models): its key, short timeouts,
    no retries, so that a server that is down answers in seconds, not after back-offs."""
    cfg = config.backends[name]
    assert isinstance(cfg, GatewayBackendConfig)
    from myninja.backends.gateway import GatewayBackend
    from myninja.backends.keys import key_name, key_store

    api_key = key_store(config).get(key_name(name, cfg))
    return GatewayBackend(
        name,
        cfg.url,
        model=cfg.model,
        api_key=api_key,
        connect_timeout=3,
        read_timeout=5,
        max_retries=0,
    )
