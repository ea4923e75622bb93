"""What a robot is, apart from any task or simulator: one description per robot (``go2.py``)."""

from leggedex.robots.description import RobotDescription
from leggedex.robots.go2 import GO2

__all__ = ["GO2", "RobotDescription"]
