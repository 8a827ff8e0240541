"""Which commands the ``alignkit`` group has. Only commands that work are listed."""

from __future__ import annotations

import click


def register(app: click.Group) -> None:
    """Attach every working command group to ``app``."""
    from alignkit.config_cmd import config
    from alignkit.data.agreement_cmd import agreement
    from alignkit.data.commands import data
    from alignkit.eval.commands import compare, eval_group
    from alignkit.lab.commands import lab
    from alignkit.pipeline.commands import demo, run
    from alignkit.pipeline.report_cmd import report
    from alignkit.plan.commands import plan
    from alignkit.train.commands import dpo, grpo, merge, ppo, rloo, rm, sft

    data.add_command(agreement)
    for command in (data, config, sft, rm, dpo, merge, lab, ppo, rloo, grpo):
        app.add_command(command)
    app.add_command(eval_group)
    app.add_command(compare)
    app.add_command(plan)
    app.add_command(run)
    app.add_command(demo)
    app.add_command(report)
