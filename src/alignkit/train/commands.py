"""The training commands: ``alignkit sft``, ``rm``, ``dpo``, ``ppo``, ``rloo``, ``grpo``."""

from __future__ import annotations

import click

from alignkit.config import dump_config
from alignkit.config_cmd import config_command
from alignkit.rundir import RunDir
from alignkit.train.dpo_config import DPOConfig, reference_mode
from alignkit.train.group_config import GRPOConfig, RLOOConfig
from alignkit.train.ppo_config import PPOConfig
from alignkit.train.processes import process_state
from alignkit.train.rm_config import RMConfig
from alignkit.train.sft_config import SFTConfig
from alignkit.train.trackers import check_trackers


def _run_options(func):
    func = click.option("--resume", is_flag=True, help=(
        "Continue the run in output_dir from its newest complete checkpoint (the config "
        "must match the one the run started with)."))(func)
    return click.option("--overwrite", is_flag=True, help=(
        "Delete an existing run in output_dir and start again."))(func)


def open_run(cfg, command: str, *, overwrite: bool, resume: bool) -> RunDir:
    """Create (or continue) the run directory named by ``cfg.output_dir``, and print its plan.

    Under several processes only the main one creates it, prints the memory
    plan (:func:`~alignkit.train.startup_plan.announce_plan`) and writes
    metrics and events; the others wait for it and open it read-only.
    ``train.plan`` and ``train.trackers`` may change on ``--resume``.
    """
    check_trackers(cfg.train.trackers)
    state = process_state()
    run = None
    if state.is_main_process:
        run = RunDir.create(cfg.output_dir, dump_config(cfg), overwrite=overwrite, resume=resume,
                            ignore_on_resume=("train.plan", "train.trackers"))
        click.echo(f"run directory: {run.path}" + (" (resumed)" if run.resumed else ""),
                   err=True)
        from alignkit.train.startup_plan import announce_plan

        announce_plan(cfg, command, run)
    state.wait_for_everyone()
    return run or RunDir(cfg.output_dir, writer=False)


@config_command("sft", SFTConfig)
@_run_options
def sft(cfg: SFTConfig, overwrite: bool, resume: bool) -> None:
    """Supervised fine-tuning: next-token loss on responses only.

    Trains on prompt/completion rows or whole conversations (only assistant turns
    are learned). Writes a run directory with metrics, checkpoints and final/.
    """
    from alignkit.train.sft import train_sft

    train_sft(cfg, open_run(cfg, "sft", overwrite=overwrite, resume=resume))
    _done(cfg)


def _done(cfg) -> None:
    if process_state().is_main_process:
        click.echo(f"done: model in {cfg.output_dir}/final", err=True)


@config_command("rm", RMConfig)
@_run_options
def rm(cfg: RMConfig, overwrite: bool, resume: bool) -> None:
    """Reward model: a scalar head trained on preference pairs (Bradley-Terry loss).

    Logs reward accuracy, margin and mean rewards per step, and held-out
    eval_accuracy every train.eval_every steps and at the end. final/ loads with
    AutoModelForSequenceClassification.from_pretrained (under LoRA it holds the adapter).
    """
    from alignkit.train.reward import train_reward_model

    train_reward_model(cfg, open_run(cfg, "rm", overwrite=overwrite, resume=resume))
    _done(cfg)


@config_command("dpo", DPOConfig)
@_run_options
def dpo(cfg: DPOConfig, overwrite: bool, resume: bool) -> None:
    """Offline preference training: DPO and its family, chosen by loss.type.

    dpo, cdpo, robust, ipo, hinge and simpo train on pairs; orpo on pairs without a
    reference; rrhf on ranked sets; kto on unpaired rows labelled desirable or not.
    The reference is precomputed once (full fine-tuning) or the policy with its LoRA
    adapter switched off. Logs implicit rewards, margin, reward accuracy and alarms.
    """
    reference_mode(cfg)  # a contradictory loss/reference pair fails before the run exists
    from alignkit.train.preference import train_dpo

    train_dpo(cfg, open_run(cfg, "dpo", overwrite=overwrite, resume=resume))
    _done(cfg)


@click.command("merge")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--output", "-o", type=click.Path(file_okay=False), default=None,
              help="Where to write the merged model [default: RUN_DIR/merged].")
def merge(run_dir: str, output: str | None) -> None:
    """Fold a LoRA run's adapter into its base and save a full model.

    The base is rebuilt from the run's config.yaml, exactly as training built it.
    """
    from alignkit.train.merge import merge_run

    click.echo(f"merged model: {merge_run(run_dir, output)}", err=True)


@config_command("ppo", PPOConfig)
@_run_options
def ppo(cfg: PPOConfig, overwrite: bool, resume: bool) -> None:
    """Online RL with PPO: rollouts, a reward, a value model, a KL penalty with a target.

    Each iteration samples one response per prompt, scores it (a reward model, a Python
    function or the lab's gold), shapes the reward with a per-token KL penalty towards the
    reference, and runs PPO epochs with GAE. With constraint.cost it is Safe-RLHF. Logs
    score, KL, KL coefficient, entropy, clipping, value figures, timing, and alarms.
    """
    from alignkit.train.ppo import train_ppo

    train_ppo(cfg, open_run(cfg, "ppo", overwrite=overwrite, resume=resume))
    _done(cfg)


@config_command("rloo", RLOOConfig)
@_run_options
def rloo(cfg: RLOOConfig, overwrite: bool, resume: bool) -> None:
    """Online RL with RLOO: k samples per prompt, leave-one-out baseline, no critic.

    An optional KL term against the reference is subtracted from each score (kl.coef).
    """
    from alignkit.train.group import train_group

    train_group(cfg, open_run(cfg, "rloo", overwrite=overwrite, resume=resume), "rloo")
    _done(cfg)


@config_command("grpo", GRPOConfig)
@_run_options
def grpo(cfg: GRPOConfig, overwrite: bool, resume: bool) -> None:
    """Online RL with GRPO: k samples per prompt, group-standardised advantages, no critic.

    An optional per-token KL term against the reference joins the loss (kl.coef).
    """
    from alignkit.train.group import train_group

    train_group(cfg, open_run(cfg, "grpo", overwrite=overwrite, resume=resume), "grpo")
    _done(cfg)
