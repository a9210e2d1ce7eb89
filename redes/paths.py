"""Where redes keeps its files. Importing this computes no settings (the CLI needs it before Django starts)."""

import os
from pathlib import Path


def data_dir() -> Path:
    """``$REDES_DATA_DIR``, else ``$XDG_DATA_HOME/redes``, else ``~/.local/share/redes`` (created if missing)."""
    configured = os.environ.get("REDES_DATA_DIR")
    if configured:
        path = Path(configured)
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(xdg) / "redes"
    path.mkdir(parents=True, exist_ok=True)
    return path
