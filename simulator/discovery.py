"""How terminals find the simulator `hotline run` started: `<data dir>/simulator.json`, written while it runs.

The file names where the simulator's REST and control API listen, never the auth token (a terminal reads that
from the data dir as the server does).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DISCOVERY = "simulator.json"


def discovery_path(data_dir: Path) -> Path:
    """Where the discovery file of `data_dir` lives."""
    return Path(data_dir) / DISCOVERY


def write_discovery(data_dir: Path, api_url: str, account_sid: str, hotline_url: str) -> Path:
    """Tell terminals in this data dir where the simulator is."""
    path = discovery_path(data_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"api_url": api_url, "account_sid": account_sid, "hotline_url": hotline_url,
                               "pid": os.getpid()}, indent=2) + "\n")
    os.replace(tmp, path)  # readers never see half a file
    return path


def read_discovery(path: Path) -> dict[str, Any]:
    """The file's fields; FileNotFoundError when no simulator runs, ValueError/KeyError/TypeError when malformed."""
    found = json.loads(path.read_text())
    return {"api_url": found["api_url"], "account_sid": found["account_sid"], "hotline_url": found["hotline_url"]}


def remove_discovery(path: Path) -> None:
    """Forget the simulator once it stops (a file left by a killed run makes terminals say it does not answer)."""
    path.unlink(missing_ok=True)
