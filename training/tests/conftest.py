import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = Path(os.environ.get("SKINSCAN_DATA", ROOT.parent / "shared" / "data"))
    if not (d / "ham10000" / "labels.csv").exists():
        pytest.fail(f"data folder not found at {d} (set SKINSCAN_DATA)")
    return d
