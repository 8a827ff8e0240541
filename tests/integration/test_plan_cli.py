"""``alignkit plan`` as a user runs it: JSON figures, the comparison, the catalogue, errors."""

import json

TINY = dict(model_type="llama", hidden_size=64, intermediate_size=160, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
            vocab_size=96)


def test_json_plan_of_a_preset(cli):
    """SmolLM2-135M (134,515,008 parameters, tied) trained in full in bf16 on a T4: weights
    2 bytes each, AdamW moments 4 bytes each; the peak is the largest phase, and the total
    adds the device's runtime."""
    done = cli("plan", "smollm2-135m", "--method", "sft", "--gpu", "T4", "--batch-size", "2",
               "--seq-len", "256", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    total = 134_515_008
    assert plan["model"]["parameters"]["total"] == total and plan["model"]["parameters"]["tied"]
    parts = plan["components_bytes"]
    assert parts["weights"] == 2 * total and parts["optimizer"] == 4 * total
    assert plan["peak_bytes"] == max(plan["phases_bytes"].values()) == sum(parts.values())
    assert plan["total_bytes"] == plan["peak_bytes"] + plan["device"]["runtime_bytes"]
    assert plan["fits"] is (plan["total_bytes"] <= plan["device"]["memory_bytes"])
    assert plan["device"]["name"] == "T4" and plan["time"]["seconds"] > 0


def test_separate_critic_and_lean_activations_options(cli):
    """SmolLM2-135M (tied, so the critic is every one of its 134,515,008 parameters) with
    PPO in bf16: a separate critic adds its weights and moments, 6 bytes per parameter, to
    the value model; turning the lean functions off only adds activations."""
    def plan(*extra):
        done = cli("plan", "smollm2-135m", "--method", "ppo", "--gpu", "T4", "--batch-size",
                   "2", "--prompt-len", "32", "--completion-len", "32", "--json", *extra)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    shared, separate, plain = plan(), plan("--critic", "separate"), plan("--no-lean-activations")
    value = separate["phases_bytes"]["generation"] - shared["phases_bytes"]["generation"]
    assert value == 6 * 134_515_008
    assert plain["phases_bytes"]["forward"] > shared["phases_bytes"]["forward"]
    assert plain["phases_bytes"]["generation"] == shared["phases_bytes"]["generation"]


def test_a_run_that_does_not_fit_gets_ranked_suggestions(cli, tmp_path):
    """The device has 1 KiB more than the same run with a precomputed reference needs, so
    that change fits and, keeping the result and saving the reference pass, ranks first."""
    from alignkit.plan.architecture import describe_model
    from alignkit.plan.catalogue import GIB, Device
    from alignkit.plan.planner import make_plan
    from alignkit.plan.settings import PlanSettings

    (tmp_path / "config.json").write_text(json.dumps(TINY))
    settings = PlanSettings("dpo", reference="precomputed", dtype="fp32", precision="fp32",
                            batch_size=4, seq_len=64)
    runtime = int(0.5 * GIB)  # what --memory without --gpu assumes
    needed = make_plan(describe_model("tiny", TINY), settings,
                       Device("x", 0, None, None, runtime), advise=False).total
    done = cli("plan", tmp_path, "--method", "dpo", "--reference", "copy", "--dtype", "fp32",
               "--precision", "fp32", "--batch-size", "4", "--seq-len", "64", "--memory",
               repr((needed + 1024) / GIB), "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["fits"] is False and plan["settings"]["reference"] == "copy"
    suggestions = plan["suggestions"]
    assert suggestions[0]["change"].startswith("reference: precomputed")
    assert suggestions[0]["fits"] and suggestions[0]["total_bytes"] == needed
    assert all(s["total_bytes"] < plan["total_bytes"] for s in suggestions)
    keys = [(not s["fits"], s["tier"]) for s in suggestions]
    assert keys == sorted(keys)


def test_comparison_of_every_method(cli, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    compared = cli("plan", tmp_path, "--compare", "--gpu", "H100-80GB", "--lora-rank", "8")
    assert compared.returncode == 0, compared.stderr
    for label in ("sft", "rm", "dpo (precomputed)", "dpo (adapter)", "dpo (copy)", "simpo",
                  "orpo", "kto (adapter)", "ppo (adapter)", "rloo (none)", "grpo (adapter)"):
        assert f"│ {label} " in compared.stdout


def test_catalogue_listing_and_user_file(cli, tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text("gpus:\n  lab-box: {memory_gib: 12, bf16_tflops: 30, source: ours}\n")
    done = cli("plan", "--list", "--catalogue", extra)
    assert done.returncode == 0, done.stderr
    assert "llama-3.1-70b" in done.stdout and "MI300X" in done.stdout
    assert "lab-box" in done.stdout and "12.0 GiB" in done.stdout


def test_user_errors_exit_2_with_a_message(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpus:\n  box: {memory_gib: 0}\n")
    cases = [
        (("plan", "llama-3.2-1", "--gpu", "T4"), "did you mean 'llama-3.2-1b'?"),
        (("plan", "smollm2-135m", "--catalogue", bad), "gpus.box.memory_gib: Input should be "
                                                       "greater than 0"),
    ]
    for args, message in cases:
        done = cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr
        assert "Traceback" not in done.stderr


def test_cpu_attention_option(cli):
    """SmolLM2-135M (30 layers, 9 heads, 3 KV heads of 64) in bf16 on this machine, SFT of
    2 rows x 256 tokens (right-padded: no mask). Per token and layer alignkit's CPU attention,
    in its causal form, keeps q, k and v 2 x (576 + 192 + 192) = 1,920, the probabilities
    9 x 256 x 2 = 4,608 and o_proj's input 2 x 576 = 1,152 (7,680); SDPA keeps q, k, v 1,920,
    its output 1,152 and log-sum-exp 36 (3,108). 512 tokens x 30 layers x 4,572 = 70,225,920."""
    def activations(*extra):
        done = cli("plan", "smollm2-135m", "--method", "sft", "--gpu", "cpu", "--precision",
                   "bf16", "--batch-size", "2", "--seq-len", "256", "--json", *extra)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["components_bytes"]["activations"]

    assert activations() - activations("--no-cpu-attention") == 70_225_920
