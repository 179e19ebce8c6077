"""Training data: grasps with their objects' network points, anchors and encoded poses."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dexlite_core.data.grasps import GraspTable
from dexlite_core.model.encoding import anchor_index, encode_pose, network_points
from dexlite_core.objects.cloud import farthest_point_sample
from dexlite_core.objects.object_set import ObjectSet


def input_point_index(objects: ObjectSet, n_points: int) -> Tensor:
    """(O, n) indices of each object's network input points: a farthest-point subset of its cloud."""
    if n_points > objects.points.shape[1]:
        raise ValueError(f"n_points {n_points} exceeds the objects' {objects.points.shape[1]} cloud points")
    return torch.stack([torch.as_tensor(farthest_point_sample(p.cpu().double().numpy(), n_points))
                        for p in objects.points]).to(objects.device)


@dataclass(frozen=True)
class GraspData:
    """Grasps ready for the network, on one device."""

    objects: ObjectSet
    point_index: Tensor  #: (O, n) network input points of each object
    obj: Tensor  #: (N,) object index
    scale: Tensor  #: (N,) metres
    anchor: Tensor  #: (N,) index into the object's network points
    pose: Tensor  #: (N, 31) network pose
    anchor_point: Tensor  #: (N, 3) metres

    def __len__(self) -> int:
        return len(self.obj)

    def codes(self) -> list[str]:
        """The object code of each row."""
        return [self.objects.codes[i] for i in self.obj.tolist()]

    def cloud(self) -> Tensor:
        """(N,) an id of each row's (object, scale) point cloud."""
        return torch.unique(torch.stack([self.obj.double(), self.scale.double()], 1), dim=0, return_inverse=True)[1]

    def points(self, obj: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        return distinct_clouds(self.objects, self.point_index, obj, scale)

    def batch(self, index: Tensor) -> tuple[Tensor, ...]:
        """(points, shape, anchor, pose, anchor_point, obj, scale) for the rows in ``index``."""
        obj, scale = self.obj[index], self.scale[index]
        points, shape = self.points(obj, scale)
        return points, shape, self.anchor[index], self.pose[index], self.anchor_point[index], obj, scale


def distinct_clouds(objects: ObjectSet, point_index: Tensor, obj: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """Network input points (S, n, 6) of the S distinct (object, scale) pairs among rows ``obj``,
    ``scale`` (B,), and each row's pair (B,): PointNet then runs once per pair."""
    keys, shape = torch.unique(torch.stack([obj.double(), scale.double()], 1), dim=0, return_inverse=True)
    u_obj, u_scale = keys[:, 0].long(), keys[:, 1].to(scale.dtype)
    rows = torch.arange(len(u_obj), device=obj.device).unsqueeze(1)
    idx = point_index[u_obj]
    return network_points(objects.points[u_obj][rows, idx], objects.normals[u_obj][rows, idx], u_scale), shape


def anchor_points(objects: ObjectSet, point_index: Tensor, obj: Tensor, scale: Tensor, anchor: Tensor) -> Tensor:
    """Metres (B, 3) of anchor ``anchor`` (B,) among the network points of ``obj`` at ``scale``."""
    return objects.points[obj, point_index[obj, anchor]] * scale.unsqueeze(-1)


def grasp_data(table: GraspTable, objects: ObjectSet, point_index: Tensor) -> GraspData:
    device = objects.device
    obj = objects.index_of(list(table.object_code))
    scale = torch.as_tensor(table.scale, device=device)
    pose = table.poses(device=device)
    rows = torch.arange(len(obj), device=device).unsqueeze(1)
    points = objects.points[obj][rows, point_index[obj]] * scale.view(-1, 1, 1)
    anchor = anchor_index(pose, points)
    anchor_point = points[torch.arange(len(obj), device=device), anchor]
    return GraspData(objects, point_index, obj, scale, anchor, encode_pose(pose, anchor_point), anchor_point)


def split_rows(table: GraspTable, split_of: dict[str, str], split: str) -> GraspTable:
    return table.select(np.array([split_of[c] == split for c in table.object_code], dtype=bool))
