"""The trained grasp model: what a checkpoint holds, and the grasps it makes.

A checkpoint file holds one :class:`GraspModel`: the CVAE's weights, its grasp bank (every training
grasp's condition, posterior and object), the number of points the network reads, whether decoded
J0 follows J1, the training step and validation loss, an optional refiner, and the params sections
it was made with (``configs``: the train stage stores ``train``; the refine stage adds ``synth``,
``postopt``, ``sim`` and ``press``, what ``dexlite grasp`` then uses). Files are read and written
here only, schema-versioned; they hold tensors and plain data, so they load with ``weights_only``.
"""
from __future__ import annotations

import functools
import io
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dexlite_core.data.files import write_bytes
from dexlite_core.data.grasps import GraspTable
from dexlite_core.hand.model import HandModel
from dexlite_core.model.data import GraspData, input_point_index
from dexlite_core.model.network import GraspCVAE, NetworkConfig
from dexlite_core.model.refine import Refinement, load_refiner
from dexlite_core.model.sample import GraspBank, SampleConfig, Samples, expand, reconstruct, synthesize
from dexlite_core.objects.object_set import ObjectSet

#: Version of the checkpoint file's layout; files of another version are refused.
CHECKPOINT_SCHEMA = 2


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class GraspModel:
    network: GraspCVAE  #: in eval mode
    bank: GraspBank
    n_points: int  #: network input points per object (farthest-point subset)
    couple_joints: bool  #: decoded J0 follows J1
    step: int  #: gradient steps trained
    val_loss: float
    configs: dict[str, dict] = field(default_factory=dict)  #: params sections it was made with
    refiner: dict | None = None  #: the refiner's stored state (:func:`dexlite_core.model.refine.refiner_state`)

    @property
    def device(self) -> torch.device:
        return self.bank.mu.device

    def point_index(self, objects: ObjectSet) -> Tensor:
        return input_point_index(objects, self.n_points)

    @functools.cached_property
    def refinement(self) -> Refinement | None:
        """The refiner with its number of passes; None without one."""
        if self.refiner is None:
            return None
        refiner, passes = load_refiner(self.refiner, self.device)
        return Refinement(refiner, passes, HandModel(device=self.device))

    def synthesize(self, objects: ObjectSet, groups: list[tuple[str, float]], config: SampleConfig,
                   other_objects_only: bool = False) -> Samples:
        """Pure synthesis on ``groups`` (:func:`dexlite_core.model.sample.synthesize`), refined when the model
        has a refiner. ``other_objects_only``: an object's own bank grasps are left out of its matches (the
        transfers the engine's adapt step and the refiner learn from)."""
        return synthesize(self.network, self.bank, objects, self.point_index(objects), groups, config,
                          self.couple_joints, self.bank.codes if other_objects_only else None, self.refinement)

    def expand(self, data: GraspData, config: SampleConfig) -> Samples:
        return expand(self.network, data, config, self.couple_joints)

    def reconstruct(self, data: GraspData, grasp_id: np.ndarray, batch: int) -> GraspTable:
        return reconstruct(self.network, data, grasp_id, self.couple_joints, batch)

    def with_configs(self, **sections: dict) -> GraspModel:
        return replace(self, configs={**self.configs, **sections})

    def save(self, path: Path) -> None:
        stored = {"schema": CHECKPOINT_SCHEMA, "model": {k: v.cpu() for k, v in self.network.state_dict().items()},
                  "network": asdict(self.network.config),
                  "n_points": self.n_points, "couple_joints": self.couple_joints, "step": self.step,
                  "val_loss": self.val_loss, "bank": {k: getattr(self.bank, k).cpu() for k in ("condition", "mu", "logvar")},
                  "bank_codes": list(self.bank.codes), "configs": self.configs}
        if self.refiner is not None:
            stored["refiner"] = self.refiner
        # Through a buffer: torch.save names the archive after the file, and the temporary file's
        # random name would make identical checkpoints differ in bytes.
        buffer = io.BytesIO()
        torch.save(stored, buffer)
        write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path, device="cpu") -> GraspModel:
        """The checkpoint at ``path``, on ``device``: a clear error for a missing, damaged, foreign or older file."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no checkpoint there; train one with `make run` (or `dvc repro train`)")
        try:
            stored = torch.load(path, map_location=device, weights_only=True)
            schema = stored.get("schema") if isinstance(stored, dict) else None
        except Exception as exc:  # torch raises many types for damaged or foreign files
            raise CheckpointError(f"{path}: not a DexLite checkpoint ({type(exc).__name__}: {str(exc)[:200]}); "
                                  "retrain with `make run`") from exc
        if schema != CHECKPOINT_SCHEMA:
            raise CheckpointError(f"{path}: a checkpoint of {'an older DexLite' if schema is None else f'schema {schema}'}"
                                  f" (this one reads schema {CHECKPOINT_SCHEMA}); rebuild it with `make run`")
        try:
            network = GraspCVAE(NetworkConfig(**stored["network"]))
            network.load_state_dict(stored["model"])
            bank = GraspBank(stored["bank"]["condition"], stored["bank"]["mu"], stored["bank"]["logvar"],
                             np.array(stored["bank_codes"], dtype=object))
            return cls(network.to(device).eval(), bank, int(stored["n_points"]), bool(stored["couple_joints"]),
                       int(stored["step"]), float(stored["val_loss"]), dict(stored["configs"]), stored.get("refiner"))
        except Exception as exc:
            raise CheckpointError(f"{path}: a damaged checkpoint ({type(exc).__name__}: {str(exc)[:200]}); "
                                  "retrain with `make run`") from exc
