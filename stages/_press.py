"""The ``press`` config, shared by every stage script that writes grasps (it imports nothing else)."""
from collections.abc import Mapping

from dexlite_core.params import build
from dexlite_core.squeeze import PressConfig


def press_config(params: Mapping) -> PressConfig:
    """How each grasp's own squeeze presses: ``press``, at the gain of the fingers that replay it (sim.dgb)."""
    return build(PressConfig, {**params["press"], "kp": params["sim"]["dgb"]["actuator_kp"]}, "press")
