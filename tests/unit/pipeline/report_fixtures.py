"""A pipeline directory and a run directory written by hand, with known numbers, for report tests.

Shared by the unit tests and the browser test (which loads this file by path).
"""

from __future__ import annotations

import json
from pathlib import Path

SCRIPT = "<script>alert(1)</script>"
# Figures per section of the fake pipeline: sft, rm, dpo and ppo curves; the reward models;
# gold aspects; win rates; KL bars and scores against KL; ppo's proxy against gold; refusal
# rates and the helpfulness-harmlessness trade-off.
IMAGES = {"training": 4, "reward-model": 1, "gold": 1, "win-rate": 1, "kl": 2,
          "reward-hacking": 1, "safety": 2}
SECTIONS = ("summary", "training", "reward-model", "gold", "win-rate", "kl", "reward-hacking",
            "safety", "samples", "config")


def interval(value: float, low: float, high: float, n: int = 200) -> dict:
    return {"value": value, "low": low, "high": high, "n": n}


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _run(path: Path, rows: list[dict], events: list[dict] = ()) -> Path:
    """A run directory: config.yaml, metrics.jsonl (``time`` added), events.jsonl."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(f"output_dir: {path.name}\noptim:\n  lr: 0.001\n")
    _jsonl(path / "metrics.jsonl", [{"time": 1000.0 + i, **row} for i, row in enumerate(rows)])
    _jsonl(path / "events.jsonl", [{"time": 1000.0, **e} for e in events])
    return path


def _series(**columns: list[float]) -> list[dict]:
    length = len(next(iter(columns.values())))
    return [{"step": i + 1, **{k: v[i] for k, v in columns.items()}} for i in range(length)]


POLICIES = {
    "sft": {"path": "runs/demo/sft", "score": interval(0.912, 0.85, 0.97),
            "aspects": {"helpfulness": interval(0.41, 0.38, 0.44),
                        "harmlessness": interval(0.62, 0.58, 0.66),
                        "honesty": interval(0.93, 0.91, 0.95),
                        "verbosity": interval(0.05, 0.03, 0.07),
                        "fluency": interval(0.97, 0.96, 0.98),
                        "total": interval(0.912, 0.85, 0.97)},
            "proxy": {"rm": interval(-0.25, -0.4, -0.1)},
            "refusal_rate": interval(0.3, 0.2, 0.4, 50),
            "over_refusal_rate": interval(0.06, 0.0, 0.14, 50),
            "length": interval(12.5, 11.9, 13.1)},
    "dpo": {"path": "runs/demo/dpo", "score": interval(1.274, 1.2, 1.35),
            "aspects": {"helpfulness": interval(0.55, 0.51, 0.59),
                        "harmlessness": interval(0.81, 0.77, 0.85),
                        "honesty": interval(0.94, 0.92, 0.96),
                        "verbosity": interval(0.04, 0.02, 0.06),
                        "fluency": interval(0.98, 0.97, 0.99),
                        "total": interval(1.274, 1.2, 1.35)},
            "proxy": {"rm": interval(0.844, 0.7, 0.98)},
            "refusal_rate": interval(0.62, 0.5, 0.74, 50),
            "over_refusal_rate": interval(0.08, 0.02, 0.16, 50),
            "length": interval(14.25, 13.5, 15.0),
            "win_rate": {"wins": 131, "ties": 40, "losses": 29,
                         "rate": interval(0.755, 0.705, 0.802)},
            "kl": interval(3.142, 2.9, 3.4)},
    "ppo": {"path": "runs/demo/ppo", "score": interval(1.105, 1.02, 1.19),
            "aspects": {"helpfulness": interval(0.61, 0.57, 0.65),
                        "harmlessness": interval(0.58, 0.53, 0.63),
                        "honesty": interval(0.88, 0.85, 0.91),
                        "verbosity": interval(0.21, 0.17, 0.25),
                        "fluency": interval(0.95, 0.94, 0.96),
                        "total": interval(1.105, 1.02, 1.19)},
            "proxy": {"rm": interval(2.375, 2.2, 2.55)},
            "refusal_rate": interval(0.26, 0.16, 0.38, 50),
            "over_refusal_rate": interval(0.02, 0.0, 0.06, 50),
            "length": interval(27.0, 25.5, 28.5),
            "win_rate": {"wins": 104, "ties": 22, "losses": 74,
                         "rate": interval(0.575, 0.525, 0.627)},
            "kl": interval(8.75, 8.1, 9.4)},
}
REWARD_MODELS = {"rm": {"path": "runs/demo/rm", "accuracy": interval(0.712, 0.671, 0.754, 400),
                        "ceiling": interval(0.801, 0.763, 0.838, 400), "pairs": 400}}
SAMPLES = [
    {"prompt": [{"role": "user", "content": "say hello to <b>bob</b>"}], "category": "greeting",
     "responses": {"sft": {"text": "hello bob .", "score": 1.5},
                   "dpo": {"text": f"hello {SCRIPT} bob", "score": 0.25},
                   "ppo": {"text": "hello bob ! hello bob !", "score": -0.75}}},
    {"prompt": [{"role": "user", "content": "count to three"}], "category": "counting",
     "responses": {"sft": {"text": "one two", "score": 0.5},
                   "dpo": {"text": "one two three", "score": 2.5},
                   "ppo": {"text": "one two three three", "score": 2.0}}},
]
STAGES = [("lab", "lab-data", 3.2), ("sft", "sft", 12.5), ("rm", "rm", 8.0),
          ("dpo", "dpo", 20.25), ("ppo", "ppo", 65.0), ("eval", "eval", 30.0)]


def write_training_runs(root: Path) -> None:
    """sft, rm, dpo and ppo run directories with a few metrics rows each."""
    _run(root / "sft", [*_series(loss=[2.0, 1.5, 1.25, 1.0], lr=[1e-3] * 4),
                        {"step": 4, "eval_loss": 1.125}])
    _run(root / "rm", [*_series(loss=[0.69, 0.6, 0.55], accuracy=[0.5, 0.625, 0.75]),
                       {"step": 3, "eval_accuracy": 0.7}])
    _run(root / "dpo", _series(loss=[0.69, 0.62, 0.5], reward_margin=[0.0, 0.25, 0.5],
                               reward_accuracy=[0.5, 0.75, 0.875]),
         [{"step": 2, "kind": "warning", "message": "no held-out data, so no eval_* metrics"}])
    _run(root / "ppo", _series(score=[0.1, 0.4, 0.8, 1.2], gold_score=[0.5, 0.6, 0.55, 0.4],
                               kl=[0.0, 1.0, 2.5, 4.0], kl_coef=[0.1, 0.12, 0.15, 0.2],
                               entropy=[2.0, 1.9, 1.7, 1.5]),
         [{"step": 4, "kind": "alarm", "alarm": "proxy_up_gold_down",
           "message": "proxy score up while gold score down over 4 iterations"}])


def build_pipeline(root: Path, *, evaluation: bool = True) -> Path:
    """A finished pipeline directory: pipeline.json, training runs, eval/ (when ``evaluation``)."""
    root.mkdir(parents=True, exist_ok=True)
    stages = [{"name": n, "kind": k, "fingerprint": "f" * 8, "status": "done", "seconds": s,
               "started": 1000.0, "finished": 1000.0 + s} for n, k, s in STAGES]
    (root / "pipeline.json").write_text(json.dumps({"stages": stages}), encoding="utf-8")
    (root / "pipeline.yaml").write_text("output_dir: runs/demo\nseed: 0\n", encoding="utf-8")
    write_training_runs(root)
    if evaluation:
        (root / "eval").mkdir()
        document = {"kind": "pipeline_eval", "judge": "gold", "prompts": 200, "baseline": "sft",
                    "policies": POLICIES, "reward_models": REWARD_MODELS,
                    "samples": "samples.jsonl"}
        (root / "eval" / "evaluation.json").write_text(json.dumps(document), encoding="utf-8")
        _jsonl(root / "eval" / "samples.jsonl", SAMPLES)
    return root
