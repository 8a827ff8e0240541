"""Will it fit? Peak memory and step time of a training run, predicted before it starts.

``alignkit plan`` (:mod:`alignkit.plan.commands`) and the training commands at
start-up share :func:`make_plan`; the training commands take its inputs from
their whole config (:mod:`alignkit.plan.from_config`). From config sections::

    from alignkit.plan import plan_for_training
    plan = plan_for_training(cfg.model, "dpo", peft=cfg.peft, train=cfg.train, data=cfg.data)
    print(plan.summary())
    if not plan.fits: ...

Modules: ``catalogue`` (model presets and devices, YAML files users extend),
``architecture`` (exact parameter counts from a meta-device model),
``activations`` and ``memory`` (the formulas), ``phases`` and ``online`` (what
is alive when), ``step_time`` (FLOPs), ``advice`` (ranked changes),
``planner`` (the :class:`Plan`), ``from_config`` (a training config's inputs
and device), ``render`` and ``commands`` (the command).
Importing this package does not import torch.
"""

from alignkit.plan.planner import Plan, Suggestion, make_plan, plan_for_training, resolve_model
from alignkit.plan.settings import METHODS, PlanSettings

__all__ = ["METHODS", "Plan", "PlanSettings", "Suggestion", "make_plan", "plan_for_training",
           "resolve_model"]
