"""``alignkit plan``: will this run fit, and what is the cheapest change that makes it fit?"""

from __future__ import annotations

import json
from pathlib import Path

import click

from alignkit.plan.settings import METHODS, REFERENCE_MODES

COMPARE_REFERENCES = {"dpo": ("precomputed", "adapter", "copy"),
                      "kto": ("precomputed", "adapter", "copy"),
                      "rloo": ("none", "adapter", "copy"), "grpo": ("none", "adapter", "copy")}


def _device(catalogue, gpu: str | None, memory: float | None, tflops: float | None):
    from dataclasses import replace

    from alignkit.plan.catalogue import GIB, Device
    from alignkit.plan.planner import detect_device

    if gpu is not None:
        device = catalogue.device(gpu)
    elif memory is not None:
        device = Device("custom", 0, None, None, int(0.5 * GIB), "--memory")
    else:
        device = detect_device()
    if memory is not None:
        device = replace(device, memory=int(memory * GIB))
    if tflops is not None:
        device = replace(device, tflops=tflops, source=f"{device.source}; --tflops {tflops:g}")
    return device


def _comparison(model, settings, device, efficiency, catalogue, source, vocab, reward_source):
    from alignkit.plan.planner import make_plan, resolve_model

    reward_shape = None
    if settings.reward_model:
        reward_shape = resolve_model(reward_source or source, catalogue, "reward", vocab)
    rows = []
    for method in METHODS:
        modes = COMPARE_REFERENCES.get(method, ("auto",))
        for mode in modes:
            if mode == "adapter" and not settings.lora:
                continue
            s = settings.but(method=method, reference=mode)
            shape = resolve_model(source, catalogue, "reward", vocab) if method == "rm" else model
            label = method + (f" ({s.reference_mode})" if s.spec.reference else "")
            rows.append((label, make_plan(shape, s, device, reward_model=reward_shape,
                                          advise=False, efficiency=efficiency)))
    return rows


def _list(catalogue) -> None:
    click.echo("model presets (alignkit plan NAME):")
    for name, preset in catalogue.models.values():
        click.echo(f"  {name:<18} {preset.model_type:<8} {preset.source}")
    click.echo("devices (--gpu NAME):")
    for name, gpu in catalogue.gpus.values():
        tflops = f"{gpu.bf16_tflops:g} TFLOPS" if gpu.bf16_tflops else "no stated TFLOPS"
        click.echo(f"  {name:<12} {gpu.memory_gib:>6.1f} GiB  {tflops:<16} {gpu.source}")
    click.echo("  cpu          this machine's memory")


@click.command("plan", short_help="Predict peak memory and step time; suggest what makes it fit.")
@click.argument("model", required=False)
@click.option("--method", "-m", type=click.Choice(METHODS), default="sft", show_default=True)
@click.option("--reference", type=click.Choice(REFERENCE_MODES), default="auto",
              show_default=True, help="Reference log-probs: auto picks none, adapter (LoRA), "
              "precomputed (offline) or copy (online).")
@click.option("--gpu", metavar="NAME", help="A device of the catalogue, or cpu (this machine). "
              "Default: the first CUDA GPU, else this machine.")
@click.option("--memory", type=click.FloatRange(min=0, min_open=True), metavar="GiB",
              help="Device memory in GiB (overrides --gpu's).")
@click.option("--tflops", type=click.FloatRange(min=0, min_open=True),
              help="Peak dense bf16 TFLOPS (overrides the catalogue's).")
@click.option("--gpus", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--zero", type=click.IntRange(0, 3), default=0, show_default=True,
              help="ZeRO stage (shards optimiser states, then gradients, then weights).")
@click.option("--dtype", type=click.Choice(["fp32", "bf16", "fp16"]), default="bf16",
              show_default=True, help="dtype the weights are stored in.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="bf16",
              show_default=True, help="bf16 runs matmuls under autocast.")
@click.option("--lora-rank", "--lora-r", type=click.IntRange(min=0), default=0,
              show_default=True, help="LoRA rank; 0 trains every weight.")
@click.option("--lora-targets", default="all-linear", show_default=True,
              help="all-linear, or comma-separated layer names (q_proj,v_proj).")
@click.option("--quantization", "--quant", type=click.Choice(["none", "4bit", "8bit"]),
              default="none", show_default=True, help="Frozen quantised base (with LoRA).")
@click.option("--batch-size", "-b", type=click.IntRange(min=1), default=8, show_default=True,
              help="Examples per micro-batch per GPU (a pair, or a prompt, is one).")
@click.option("--grad-accum", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--seq-len", type=click.IntRange(min=2), default=512, show_default=True,
              help="Tokens per row (prompt + response), offline methods.")
@click.option("--prompt-len", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--completion-len", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--samples", type=click.IntRange(min=1), default=4, show_default=True,
              help="Completions per prompt, online methods.")
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=False,
              show_default=True)
@click.option("--lean-activations/--no-lean-activations", default=True, show_default=True,
              help="The trainers' lean RMSNorm and SwiGLU (model.lean_activations; Llama, "
              "Mistral and Qwen2).")
@click.option("--cpu-attention/--no-cpu-attention", default=True, show_default=True,
              help="On a CPU, bf16 passes of at most 512 tokens take alignkit's attention, "
              "which keeps the attention probabilities (model.cpu_attention).")
@click.option("--critic", type=click.Choice(["shared", "separate"]), default="shared",
              show_default=True, help="PPO's critic: a value head on the policy, or its own "
              "copy of the model (value.model).")
@click.option("--optimizer", type=click.Choice(["adamw", "adamw8bit"]), default="adamw",
              show_default=True)
@click.option("--update-in-backward", is_flag=True, help="Apply each gradient as backward "
              "completes it and free it (optim.update_in_backward; offline methods, one "
              "process, no accumulation).")
@click.option("--attention", type=click.Choice(["sdpa", "eager"]), default="sdpa",
              show_default=True)
@click.option("--vocab-size", type=click.IntRange(min=1), help="Override the vocabulary size.")
@click.option("--reward-model", metavar="MODEL", help="Reward model of online methods "
              "(directory, config.json or preset), or none for a reward function; default: "
              "the policy's architecture.")
@click.option("--efficiency", type=click.FloatRange(0, 1, min_open=True), default=0.4,
              show_default=True, help="Share of the peak throughput a step reaches.")
@click.option("--compare", is_flag=True, help="One row per method instead of one breakdown.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--catalogue", "catalogues", multiple=True, metavar="FILE",
              type=click.Path(path_type=Path, dir_okay=False),
              help="Extra YAML catalogue of models and GPUs (repeatable; also "
              "ALIGNKIT_CATALOGUE).")
@click.option("--list", "list_catalogue", is_flag=True, help="List presets and devices.")
def plan(model, method, reference, gpu, memory, tflops, gpus, zero, dtype, precision, lora_rank,
         lora_targets, quantization, batch_size, grad_accum, seq_len, prompt_len, completion_len,
         samples, gradient_checkpointing, lean_activations, cpu_attention, critic, optimizer,
         update_in_backward, attention, vocab_size, reward_model, efficiency, compare, as_json,
         catalogues, list_catalogue) -> None:
    """Predict the peak memory of training MODEL with a method, and the time of a step.

    MODEL is a local model directory, a config.json, or a preset (see --list). The
    model is built on the meta device, so parameter counts are exact and no weights
    are read. The breakdown shows weights, gradients, optimiser states, activations,
    logits, the reference, reward and value models, the KV cache and workspace at
    the peak phase; when the run does not fit, ranked changes that make it fit
    follow, each with its new total.

    \b
    Examples:
      alignkit plan llama-3.2-1b --method dpo --gpu A100-80GB --batch-size 8 --seq-len 1024
      alignkit plan ./my-model --method grpo --gpu L4 --lora-rank 16 --quant 4bit
      alignkit plan qwen2.5-7b --gpu H100-80GB --compare --lora-rank 16
    """
    from rich.console import Console

    from alignkit.errors import AlignkitError
    from alignkit.plan.catalogue import load_catalogue
    from alignkit.plan.planner import make_plan, resolve_model
    from alignkit.plan.render import plan_as_dict, render_comparison, render_plan
    from alignkit.plan.settings import PlanSettings

    catalogue = load_catalogue(catalogues)
    if list_catalogue:
        _list(catalogue)
        return
    if model is None:
        raise AlignkitError("give a MODEL (a directory, a config.json or a preset; see "
                            "alignkit plan --list)")
    targets = lora_targets if lora_targets == "all-linear" else \
        tuple(t.strip() for t in lora_targets.split(",") if t.strip())
    settings = PlanSettings(
        method, reference=reference, dtype=dtype, precision=precision, lora_rank=lora_rank,
        lora_targets=targets, quantization=quantization, batch_size=batch_size,
        grad_accum=grad_accum, seq_len=seq_len, prompt_len=prompt_len,
        completion_len=completion_len, samples=samples,
        gradient_checkpointing=gradient_checkpointing, lean_activations=lean_activations,
        cpu_attention=cpu_attention,
        optimizer=optimizer, update_in_backward=update_in_backward, zero=zero, gpus=gpus,
        attention=attention,
        reward_model=reward_model != "none", separate_critic=critic == "separate")
    device = _device(catalogue, gpu, memory, tflops)
    shape = resolve_model(model, catalogue, "reward" if method == "rm" else "causal_lm",
                          vocab_size)
    reward_shape = None
    if settings.spec.online and settings.reward_model:
        reward_shape = resolve_model(reward_model or model, catalogue, "reward", vocab_size)
    console = Console(soft_wrap=True)
    if compare:
        rows = _comparison(shape, settings, device, efficiency, catalogue, model, vocab_size,
                           reward_model)
        if as_json:
            click.echo(json.dumps([dict(plan_as_dict(p), label=label) for label, p in rows],
                                  indent=2))
        else:
            render_comparison(rows, console)
        return
    result = make_plan(shape, settings, device, reward_model=reward_shape, efficiency=efficiency)
    if as_json:
        click.echo(json.dumps(plan_as_dict(result), indent=2))
    else:
        render_plan(result, console)
