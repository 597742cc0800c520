#!/usr/bin/env python3
"""Holds docker-compose.yml to what .env.example and the README promise
(run by .ci/run; needs PyYAML). With .env.example copied to .env:

- every variable of .env.example reaches the clearance container with the
  value .env gives it, except those compose sets itself to its own services,
  and .env.example names each of those;
- a missing .env is no error (env_file with required: false);
- the clearance service has a health check that runs `clearance health`;
- every image is pinned to a version (no `latest`, no bare name).

Usage: tests/compose_check.py [REPO_ROOT]
"""

import re
import sys
from pathlib import Path

import yaml

root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
compose = yaml.safe_load((root / "docker-compose.yml").read_text())
example_text = (root / ".env.example").read_text()
failures = []


def dotenv(text):
    """KEY=VALUE lines as compose reads them (quotes removed)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def substitute(value, env):
    """Compose's ${VAR}, ${VAR:-default} and ${VAR-default}."""
    def one(match):
        name, op, default = match.group(1), match.group(2), match.group(3) or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        return env.get(name, "")
    return re.sub(r"\$\{(\w+)(?:(:?-)([^}]*))?\}", one, str(value))


dot_env = dotenv(example_text)
service = compose["services"]["clearance"]

# env_file: .env, optional.
env_files = service.get("env_file") or []
if isinstance(env_files, str):
    env_files = [env_files]
entries = [e if isinstance(e, dict) else {"path": e} for e in env_files]
dot_env_entries = [e for e in entries if e.get("path") in (".env", "./.env")]
if not dot_env_entries:
    failures.append("the clearance service has no env_file .env")
elif any(e.get("required", True) is not False for e in dot_env_entries):
    failures.append("env_file .env must be `required: false` (a fresh clone has no .env)")

# What the container gets: env_file first, then `environment` over it (with
# ${…} substituted from .env, as compose does).
container = dict(dot_env) if dot_env_entries else {}
environment = service.get("environment") or {}
if isinstance(environment, list):
    environment = dict(item.partition("=")[::2] for item in environment)
for key, value in environment.items():
    container[key] = substitute(value, dot_env)

header = example_text.split("\n\n")[0] + "\n" + example_text.split("\n\n")[1]
for key, value in dot_env.items():
    if key not in container:
        failures.append(f"{key} (in .env.example) never reaches the clearance container")
    elif container[key] != value:
        # Compose's own value: fine when .env.example says so.
        if not re.search(rf"\b{key}\b", header):
            failures.append(
                f"{key}: compose sets {container[key]!r} over .env's {value!r}, "
                ".env.example's opening comment does not say so"
            )

# A health check through the binary (the image has no curl).
test = (service.get("healthcheck") or {}).get("test")
command = " ".join(test) if isinstance(test, list) else str(test or "")
if "clearance health" not in command:
    failures.append(f"the clearance service's healthcheck does not run `clearance health`: {test!r}")

# Pinned images.
for name, other in compose["services"].items():
    image = other.get("image")
    if image is None:
        continue
    tag = image.rpartition(":")[2] if ":" in image.rsplit("/", 1)[-1] else ""
    if tag in ("", "latest"):
        failures.append(f"service {name}: image {image} is not pinned to a version")

for failure in failures:
    print(f"compose check: {failure}", file=sys.stderr)
if failures:
    sys.exit(1)
print(
    f"compose check: {len(dot_env)} variables of .env.example reach the clearance container "
    f"({', '.join(k for k in dot_env if container[k] != dot_env[k]) or 'none'} set by compose); "
    "healthcheck and pinned images ok"
)
