"""Transport options: settings that change how requests travel, never what they ask.

A run's identity (``session.identity``) leaves them out, so a run resumes after its server's
address, timeouts, retries or pacing change; each backend names its own in
``ModelBackend.transport_options``.
"""

from __future__ import annotations

import json
from typing import Any

from societies.backends.base import get_backend_class


def split_transport(data: dict[str, Any]) -> dict[str, Any]:
    """Take every backend's transport options (``transport_options``: base_url, timeouts,
    retries, pacing) out of an experiment's dump, in place; return them by field path.

    They never change a request (the request hash guards that), so fixing a server's address
    or a timeout must not make a run directory "a different experiment".
    """
    moved: dict[str, Any] = {}

    def strip(model: Any, path: str, backend: str) -> str:
        if not isinstance(model, dict):
            return backend
        backend = model.get("backend") or backend
        options = model.get("options")
        if isinstance(options, dict):
            try:
                keys = get_backend_class(backend).transport_options
            except KeyError:
                keys = frozenset()
            for key in sorted(keys & set(options)):
                moved[f"{path}.options.{key}"] = options.pop(key)
        return str(backend)

    top = strip(data.get("model"), "model", "sim")
    for i, society in enumerate(data.get("societies") or []):
        if not isinstance(society, dict):
            continue
        own = strip(society.get("model"), f"societies[{i}].model", top)
        agents = society.get("agents")
        for j, agent in enumerate(agents if isinstance(agents, list) else []):
            if isinstance(agent, dict):
                strip(agent.get("model"), f"societies[{i}].agents[{j}].model", own)
    return moved


def changed_transport(config_json: str, experiment: dict[str, Any]) -> list[str]:
    """Names (never values: headers may hold credentials) of the transport options that
    differ between a run's stored config and an experiment's dump."""
    try:
        old = split_transport(json.loads(config_json))
    except (ValueError, AttributeError):
        return []
    new = split_transport(experiment)
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
