"""Write the lab's datasets and model directory as ordinary files.

``generate_lab(out_dir, seed, size)`` writes, all as JSONL in the formats of
:mod:`alignkit.data` (read back by ``load_examples``):

=========================  ==========  ================================================
file                       kind        what
=========================  ==========  ================================================
sft.jsonl                  sft         mixed-quality demonstrations (64% good)
pairs.jsonl                pairs       panel-labelled pairs, votes in ``labels``
annotations.jsonl          (table)     the same votes, one column per annotator
harm_pairs.jsonl           pairs       panel-labelled for harm: chosen = more harmful
kto.jsonl                  unpaired    single responses, label = panel majority
ranked.jsonl               ranked      4 responses, Borda scores from the panel
rl_prompts.jsonl           prompts     training-template prompts for online RL
eval_prompts.jsonl         prompts     held-out-template prompts, every family alike
gold_pairs_eval.jsonl      pairs       held-out pairs ordered by the gold reward
harmful_eval.jsonl         prompts     held-out harmful requests (refusal rate)
harmless_tricky_eval.jsonl prompts     held-out harmless requests that sound harmful
model/                     model dir   tokenizer + Llama ``config.json``
lab.json                   manifest    seed, size and row counts
=========================  ==========  ================================================

A prompts file has rows ``{"prompt": [messages], "id", "category"}``; read it
with :func:`read_prompts`. Everything is a pure function of the seed: the same
seed gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from alignkit.data.readers import read_records
from alignkit.data.schema import Text
from alignkit.data.writers import write_examples
from alignkit.errors import ConfigError, DataError
from alignkit.lab import builders
from alignkit.lab.annotators import PANEL
from alignkit.lab.model import TOKENIZERS, write_model_dir
from alignkit.lab.prompts import as_conversation


@dataclass(frozen=True)
class LabSize:
    """Rows of each dataset."""

    sft: int
    pairs: int
    harm_pairs: int
    kto: int
    ranked: int
    rl_prompts: int
    eval_prompts: int
    gold_pairs_eval: int
    harmful_eval: int
    harmless_tricky_eval: int


SIZES: dict[str, LabSize] = {
    "small": LabSize(sft=240, pairs=160, harm_pairs=80, kto=160, ranked=40, rl_prompts=64,
                     eval_prompts=66, gold_pairs_eval=80, harmful_eval=24,
                     harmless_tricky_eval=24),
    "default": LabSize(sft=4000, pairs=2400, harm_pairs=1200, kto=2000, ranked=600,
                       rl_prompts=600, eval_prompts=330, gold_pairs_eval=600, harmful_eval=120,
                       harmless_tricky_eval=120),
}


@dataclass(frozen=True)
class LabPaths:
    """Where :func:`generate_lab` puts each file."""

    root: Path
    sft: Path
    pairs: Path
    harm_pairs: Path
    annotations: Path
    kto: Path
    ranked: Path
    rl_prompts: Path
    eval_prompts: Path
    gold_pairs_eval: Path
    harmful_eval: Path
    harmless_tricky_eval: Path
    model: Path
    model_config: Path
    manifest: Path

    @classmethod
    def under(cls, root: str | Path) -> LabPaths:
        """The paths of a lab directory at ``root``."""
        root = Path(root)
        names = {f.name: root / f"{f.name}.jsonl" for f in fields(cls)}
        names.update(root=root, model=root / "model", model_config=root / "model" / "config.json",
                     manifest=root / "lab.json")
        return cls(**names)


@dataclass(frozen=True)
class PromptRow:
    """One row of a prompts file."""

    id: str
    category: str | None
    prompt: Text


def generate_lab(out_dir: str | Path, seed: int = 0, size: str = "default", *,
                 tokenizer: str = "word") -> LabPaths:
    """Write every lab dataset, the model directory and the manifest into ``out_dir``.

    Args:
        out_dir: the lab directory, created if missing; existing lab files are replaced.
        seed: seeds everything generated.
        size: a key of :data:`SIZES`.
        tokenizer: the model directory's tokenizer, ``word`` or ``bpe``
            (see :mod:`alignkit.lab.model`).

    Raises:
        ConfigError: ``size`` or ``tokenizer`` is unknown.
        DataError: a file cannot be written.
    """
    if size not in SIZES:
        raise ConfigError(f"unknown lab size {size!r}; use one of {', '.join(SIZES)}")
    if tokenizer not in TOKENIZERS:
        raise ConfigError(f"unknown lab tokenizer {tokenizer!r}; use one of "
                          f"{', '.join(TOKENIZERS)}")
    counts = SIZES[size]
    paths = LabPaths.under(out_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    write_examples(builders.sft_examples(seed, counts.sft), paths.sft)
    pairs, table = builders.preference_pairs(seed, counts.pairs)
    write_examples(pairs, paths.pairs)
    _write_rows(table, paths.annotations)
    write_examples(builders.harm_pairs(seed, counts.harm_pairs), paths.harm_pairs)
    write_examples(builders.unpaired_examples(seed, counts.kto), paths.kto)
    write_examples(builders.ranked_sets(seed, counts.ranked), paths.ranked)
    write_examples(builders.gold_pairs(seed, counts.gold_pairs_eval), paths.gold_pairs_eval)
    _write_rows(builders.prompt_rows(seed, counts.rl_prompts, "rl_prompts", heldout=False),
                paths.rl_prompts)
    _write_rows(builders.prompt_rows(seed, counts.eval_prompts, "eval_prompts", heldout=True),
                paths.eval_prompts)
    _write_rows(builders.prompt_rows(seed, counts.harmful_eval, "harmful_eval", heldout=True,
                                     family="harmful"), paths.harmful_eval)
    _write_rows(builders.prompt_rows(seed, counts.harmless_tricky_eval, "harmless_tricky_eval",
                                     heldout=True, family="tricky"), paths.harmless_tricky_eval)
    write_model_dir(paths.model, seed, tokenizer=tokenizer)
    _write_manifest(paths, seed, size, counts, tokenizer)
    return paths


def read_prompts(path: str | Path) -> list[PromptRow]:
    """Read a prompts file (``rl_prompts.jsonl``, ``eval_prompts.jsonl``...).

    Raises:
        DataError: a row is unreadable or its ``prompt`` is missing or malformed,
            naming the file, the row and the field.
    """
    rows = []
    for record in read_records(path):
        if record.error is not None:
            raise record.error
        data = record.data or {}
        where = {"source": str(path), "row": record.row}
        if "prompt" not in data:
            raise DataError("missing_field", "a prompts row needs a prompt", field="prompt",
                            **where)
        try:
            prompt = as_conversation(data["prompt"])
        except DataError as exc:
            raise DataError(exc.reason, exc.detail, field="prompt", **where) from exc
        category = data.get("category")
        rows.append(PromptRow(str(data.get("id", record.row)),
                              category if isinstance(category, str) else None, prompt))
    return rows


def _write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path.write_text("".join(lines), encoding="utf-8")


def _write_manifest(paths: LabPaths, seed: int, size: str, counts: LabSize,
                    tokenizer: str) -> None:
    manifest = {
        "seed": seed,
        "size": size,
        "tokenizer": tokenizer,
        "rows": {f.name: getattr(counts, f.name) for f in fields(counts)},
        "files": {f.name: getattr(paths, f.name).relative_to(paths.root).as_posix()
                  for f in fields(paths) if f.name not in ("root", "manifest")},
        "annotators": [a.name for a in PANEL],
    }
    paths.manifest.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
