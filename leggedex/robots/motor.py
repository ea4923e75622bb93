"""The torque a joint motor can give at a speed: a DC motor's torque-speed line, capped by the torque limit.

Driving (torque and speed of the same sign), the available torque falls linearly from the torque limit at rest to
zero at the no-load speed; braking, the full limit stays available. With ``torque_limits`` as the stall torque this
is ``tau_max(w) = clip(tau_limit * (1 - w / w_max), 0, tau_limit)`` upward and its mirror downward.
"""

from __future__ import annotations

import numpy as np


def torque_speed_clip(tau: np.ndarray, dof_vel: np.ndarray, torque_limits: np.ndarray,
                      velocity_limits: np.ndarray) -> np.ndarray:
    """``tau`` (..., joints) clipped to what each motor gives at ``dof_vel`` (rad/s); limits per joint (Nm, rad/s)."""
    ratio = dof_vel / velocity_limits
    upper = np.clip(torque_limits * (1.0 - ratio), 0.0, torque_limits)
    lower = np.clip(torque_limits * (-1.0 - ratio), -torque_limits, 0.0)
    return np.minimum(np.maximum(tau, lower), upper)
