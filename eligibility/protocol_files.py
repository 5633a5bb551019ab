"""Where the protocol's data files are read from: the packaged `eligibility/protocol/` folder,
or the folder named by the environment variable ELIGIBILITY_PROTOCOL_DIR (a full copy of that
folder, e.g. an amendment tried in a temporary directory). Every module that reads a protocol
file (fields, diseases, criteria, parameters, readings, short names, mapping) reads it here."""

from __future__ import annotations

import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

ENV_VAR = "ELIGIBILITY_PROTOCOL_DIR"


def protocol_dir() -> Traversable:
    override = os.environ.get(ENV_VAR, "").strip()
    if override:
        path = Path(override)
        if not path.is_dir():
            raise FileNotFoundError(f"{ENV_VAR}={override}: not a folder")
        return path
    return resources.files("eligibility.protocol")


def read_text(name: str) -> str:
    return protocol_dir().joinpath(name).read_text("utf-8")


def read_bytes(name: str) -> bytes:
    return protocol_dir().joinpath(name).read_bytes()


def read_yaml(name: str) -> Any:
    return yaml.safe_load(read_text(name))
