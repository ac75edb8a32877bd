"""The Hugging Face hub: is it reachable (fast), is a model cached, and its errors as one-line ModelErrors.

Reachability is decided quickly: the offline environment flags first, then one short TCP connect to the
endpoint (or the proxy in front of it), remembered for ``PROBE_TTL_S`` seconds, with no retries.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any
from urllib.parse import urlparse

from core.errors import HubUnavailableError, ModelError, ModelUnavailableError
from core.models.registry import MODELS, unknown_model

__all__ = [
    "hub_config",
    "hub_revision",
    "is_cached",
    "map_hub_error",
    "models_available_offline",
    "require_hub",
]

_TRUTHY = {"1", "true", "yes", "on", "y", "t"}
PROBE_TTL_S = 30.0
_probe_cache: tuple[float, bool, str] | None = None

# Exception classes (by name, as they come from huggingface_hub, requests or httpx without importing
# each) that mean "the repository does not exist" and "no connection".
_NOT_FOUND = {"RepositoryNotFoundError", "RevisionNotFoundError"}
_NO_CONNECTION = {
    "OfflineModeIsEnabled",
    "LocalEntryNotFoundError",
    "ConnectError",
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "TimeoutException",
}


def _offline_flag() -> str | None:
    """The environment variable that puts Hugging Face in offline mode, if one is set."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUTHY:
            return var
    return None


def _proxy_for(url: str) -> str | None:
    """The proxy URL requests would use for ``url`` (HTTPS_PROXY / ALL_PROXY, honouring NO_PROXY)."""
    import urllib.request

    proxies = urllib.request.getproxies()
    host = urlparse(url).hostname or ""
    if urllib.request.proxy_bypass(host):
        return None
    return proxies.get(urlparse(url).scheme) or proxies.get("all")


def _probe_hub(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether the hub endpoint (or the proxy in front of it) accepts a TCP connection within ``timeout`` s."""
    global _probe_cache
    now = time.monotonic()
    if _probe_cache is not None and now - _probe_cache[0] < PROBE_TTL_S:
        return _probe_cache[1], _probe_cache[2]
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    target = urlparse(_proxy_for(endpoint) or endpoint)
    host = target.hostname or "huggingface.co"
    port = target.port or (80 if target.scheme == "http" else 443)
    result: list[str] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append("")
        except OSError as exc:
            result.append(exc.strerror or type(exc).__name__)

    # A thread bounds the whole probe, DNS included (getaddrinfo ignores the socket timeout).
    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout + 0.5)
    if result and result[0] == "":
        ok, why = True, ""
    else:
        ok, why = False, f"cannot connect to {host}:{port} ({result[0] if result else 'timed out'})"
    _probe_cache = (now, ok, why)
    return ok, why


def is_cached(hf_id: str) -> bool:
    """Whether a hub model's config is already in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(hf_id, "config.json"), str)
    except Exception:
        return False


def hub_revision(hf_id: str, config: Any | None = None) -> str | None:
    """The commit of a hub model: from a loaded config, else from the local Hugging Face cache."""
    commit = getattr(config, "_commit_hash", None) if config is not None else None
    if commit:
        return str(commit)
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(hf_id, "config.json")
    except Exception:  # a broken or absent hub cache just means "unknown"
        return None
    if isinstance(found, str) and "/snapshots/" in found:
        return found.split("/snapshots/")[1].split("/")[0]
    return None


def models_available_offline() -> list[str]:
    """Preset keys usable without the hub: offline Whisper packages that are installed, and cached hub models."""
    from core.models.whisper_offline import offline_whisper_available

    keys = []
    for spec in MODELS.values():
        if spec.source == "offline":
            if offline_whisper_available(spec.key):
                keys.append(spec.key)
        elif is_cached(spec.hf_id):
            keys.append(spec.key)
    return keys


def _hub_unavailable(name: str, why: str) -> HubUnavailableError:
    """A HubUnavailableError that lists what works offline."""
    offline = models_available_offline()
    listed = ", ".join(offline) if offline else "none of the presets"
    return HubUnavailableError(
        f"Cannot download '{name}': the Hugging Face hub is unreachable ({why}) and it is not cached. "
        f"Available offline: {listed}; any local model directory also works."
    )


def require_hub(name: str) -> None:
    """Raise HubUnavailableError quickly unless the hub can be reached."""
    flag = _offline_flag()
    if flag:
        raise _hub_unavailable(name, f"{flag} is set")
    ok, why = _probe_hub()
    if not ok:
        raise _hub_unavailable(name, why)


def _chain(exc: BaseException) -> list[BaseException]:
    """An exception and its causes/contexts."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out and len(out) < 10:
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def map_hub_error(name: str, exc: Exception) -> ModelError:
    """Translate a transformers / huggingface_hub loading error into one of our one-line errors."""
    names = {type(e).__name__ for e in _chain(exc)}
    text = " ".join(str(e) for e in _chain(exc)).lower()
    if names & _NOT_FOUND or "not a valid model identifier" in text:
        return unknown_model(name, "not found on the Hugging Face hub")
    if names & _NO_CONNECTION or "couldn't connect" in text:
        return _hub_unavailable(name, "connection failed")
    if "GatedRepoError" in names:
        return ModelUnavailableError(
            f"'{name}' is a gated repository: accept its terms and log in first"
        )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelUnavailableError(f"Could not load '{name}': {first}")


def hub_config(hf_id: str, trust_remote_code: bool) -> Any:
    """Fetch a hub model's config: from the cache if there, else from the hub (fast failure when offline)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            hf_id, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except Exception:
        pass
    require_hub(hf_id)
    try:
        return AutoConfig.from_pretrained(hf_id, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise map_hub_error(hf_id, exc) from None
