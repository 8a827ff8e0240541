"""``alignkit sft``: supervised fine-tuning of a causal LM on responses only.

The loss is the token-level NLL of response tokens (prompt tokens and
non-assistant turns are masked out), normalised by the number of response
tokens in the whole accumulated global batch, so that gradient accumulation
and data parallelism give the gradient of one large batch.
"""

from __future__ import annotations

import torch

from alignkit.data.packing import forward_inputs
from alignkit.losses import sft_loss
from alignkit.train.engine import Engine
from alignkit.train.inputs import TrainingData, load_training_data
from alignkit.train.models_setup import build_policy, tokenizer_for
from alignkit.train.outputs import save_final
from alignkit.train.scored_logits import scored_logits
from alignkit.train.sft_config import SFTConfig


def scored_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Response tokens the loss scores in ``batch`` (position 0 is never predicted)."""
    return int(batch["loss_mask"][:, 1:].sum())


def sft_batch_loss(model, batch: dict[str, torch.Tensor], normalizer: float) -> torch.Tensor:
    """Summed response-token NLL of ``batch`` divided by ``normalizer`` (a 0-d tensor)."""
    dtype = next(model.parameters()).dtype
    inputs = dict(forward_inputs(batch, dtype), use_cache=False)
    logits, labels, mask = scored_logits(model, batch, inputs)
    loss, _ = sft_loss(logits, labels, mask, normalizer=normalizer)
    return loss


@torch.no_grad()
def evaluate_sft(model, rows: list, collate, batch_size: int, device) -> dict[str, float]:
    """Mean response-token NLL over held-out rows (and its perplexity)."""
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = {k: v.to(device) for k, v in collate(rows[start:start + batch_size]).items()}
        n = scored_tokens(batch)
        total += float(sft_batch_loss(model, batch, normalizer=1.0))
        tokens += n
    model.train()
    mean = total / max(tokens, 1)
    return {"eval_loss": mean, "eval_perplexity": float(torch.tensor(mean).exp())}


def train_sft(cfg: SFTConfig, run) -> None:
    """Run SFT into the run directory ``run`` (created by the caller)."""
    tokenizer = tokenizer_for(cfg.model)
    data: TrainingData = load_training_data(cfg.data, "sft", tokenizer, run,
                                            packing=cfg.data.packing, seed=cfg.train.seed)
    model = build_policy(cfg.model, cfg.peft, tokenizer, seed=cfg.train.seed)
    engine = Engine(cfg.train, cfg.optim, run)
    model = engine.prepare(model, len(data.train))
    model.train()
    for plan in engine.plans(len(data.train)):
        batches = [data.collate([data.train[i] for i in idx]) for idx in plan.micro_batches]
        total = engine.global_sum(sum(scored_tokens(b) for b in batches))
        loss_sum, tokens = 0.0, 0
        for i, batch in enumerate(batches):
            batch = {k: v.to(engine.device) for k, v in batch.items()}
            with engine.accumulating(model, last=i == len(batches) - 1):
                loss = sft_batch_loss(model, batch, total)
                engine.backward(loss)
            loss_sum += float(loss.detach())
            tokens += int(batch["attention_mask"].sum())
        stepped = engine.finish_step({}, tokens=tokens, loss=engine.global_sum(loss_sum))
        if stepped and data.eval and engine.evaluation_due():
            engine.log_evaluation(evaluate_sft(model, data.eval, data.collate_eval,
                                               cfg.train.batch_size, engine.device))
    engine.close()
    save_final(engine, model, tokenizer, run)
