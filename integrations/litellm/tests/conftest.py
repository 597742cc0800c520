"""Shared set-up: the guard importable from the source tree, and LiteLLM kept
off the Internet (it fetches a model price list at import otherwise)."""

import os
import sys
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
