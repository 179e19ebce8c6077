"""params.yaml and params-full.yaml: typed configs reject bad values; the full-size overrides stay valid."""
from pathlib import Path

import pytest
import yaml

from dexlite_core.params import ParamsError, flatten, override_args

ROOT = Path(__file__).resolve().parents[1]


def leaf_values(path: Path) -> dict:
    return dict(flatten(yaml.safe_load(path.read_text())))


def test_full_size_overrides_name_existing_keys_with_compatible_types():
    base, full = leaf_values(ROOT / "params.yaml"), leaf_values(ROOT / "params-full.yaml")
    assert full, "params-full.yaml overrides nothing"
    for key, value in full.items():
        assert key in base, key
        expected = type(base[key])
        # An integer may stand for a float (params are coerced); nothing else changes type.
        assert isinstance(value, expected) or (expected is float and type(value) is int), key
    args = override_args(ROOT / "params-full.yaml", ROOT / "params.yaml")
    assert args[0::2] == ["-S"] * len(full)
    assert "curate.optimize.n_per_object=2048" in args and all(" " not in a for a in args)


def test_override_of_an_unknown_key_is_refused(tmp_path):
    bad = tmp_path / "overrides.yaml"
    bad.write_text("train:\n  epoch: 5\n")
    with pytest.raises(ParamsError, match="train.epoch is not a key"):
        override_args(bad, ROOT / "params.yaml")
