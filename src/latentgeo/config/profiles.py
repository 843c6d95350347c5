"""Switch the active profile: ``params.yaml`` is what ``dvc repro`` reads.

The committed ``params.yaml`` is the embedded default profile; ``profiles/<name>.yaml`` are the
alternatives. Making one active copies it over ``params.yaml`` (validated first), so DVC sees
exactly which parameters changed; ``default`` restores the committed file from git.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from latentgeo import io
from latentgeo.config.schema import PARAMS_FILE, Params, validate_params
from latentgeo.errors import LatentgeoError

PROFILES_DIR = Path("profiles")


def available_profiles(root: Path = Path(".")) -> list[str]:
    return ["default"] + sorted(p.stem for p in (root / PROFILES_DIR).glob("*.yaml"))


def profile_text(name: str, root: Path = Path(".")) -> str:
    """The YAML text of a named profile (``default``: the committed params.yaml)."""
    if name == "default":
        result = subprocess.run(["git", "show", f"HEAD:{PARAMS_FILE}"], cwd=root,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LatentgeoError(f"cannot read the committed {PARAMS_FILE} from git: {result.stderr.strip()}")
        return result.stdout
    path = root / PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise LatentgeoError(f"unknown profile {name!r}; allowed: {available_profiles(root)}")
    return path.read_text(encoding="utf-8")


def check_profile_name(params: Params, name: str) -> Params:
    """Raise unless ``profiles/<name>.yaml`` says ``profile: <name>``. The figures, the results
    and `latentgeo verify` (which tolerances, which committed results) go by that key: a copied
    profile that kept its source's name would pass for its source."""
    if params.profile != name:
        raise LatentgeoError(
            f"{PROFILES_DIR / f'{name}.yaml'} says profile: {params.profile}; set it to {name} "
            "(the figures, the results and `latentgeo verify` go by that name)"
        )
    return params


def use_profile(name: str, root: Path = Path(".")) -> Path:
    """Validate profile ``name`` and make it the active ``params.yaml``."""
    text = profile_text(name, root)
    check_profile_name(validate_params(yaml.safe_load(text), f"profile {name!r}"), name)
    target = root / PARAMS_FILE
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return target
    with io.atomic_output(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
