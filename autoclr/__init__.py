"""autoclr: cyclical learning rates for skorch nets, with bounds found automatically.

``AutoCLR(net).fit(X, y)`` runs an LR range test, reads ``base_lr`` and
``max_lr`` off the validation curve, and trains the net with
``torch.optim.lr_scheduler.CyclicLR`` (Smith, 2017), or one ``OneCycleLR``
cycle, for whole cycles.
"""

from ._cycles import CycleReport, cyclic_lr_callback, one_cycle_callback
from ._detect import Bounds, BoundsWarning, CurveError, accuracy_bounds, detect_bounds, loss_bounds
from ._distributed import DDPCriterionMixin
from ._estimator import AutoCLR
from ._plotting import plot_lr_schedule, plot_range_test
from ._range_test import RangeTestResult, range_test
from ._schedule import CyclePlan, plan_cycles
from ._suggest import Suggestion

__version__ = "0.1.0"

__all__ = [
    "AutoCLR",
    "Bounds",
    "BoundsWarning",
    "CurveError",
    "CyclePlan",
    "CycleReport",
    "DDPCriterionMixin",
    "RangeTestResult",
    "Suggestion",
    "accuracy_bounds",
    "cyclic_lr_callback",
    "detect_bounds",
    "loss_bounds",
    "one_cycle_callback",
    "plan_cycles",
    "plot_lr_schedule",
    "plot_range_test",
    "range_test",
]
