"""Shipping a trained model as ``--model builtin:NAME`` (``parlswarm train ship``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from nano_support import tiny_policy
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from parlswarm.cli import app
from parlswarm.models import load_model
from parlswarm.models.adapter import LoraSettings, add_adapter
from parlswarm.models.base import ModelSpecError
from parlswarm.models.local import LocalModel
from parlswarm.models.local_settings import LocalSettings
from parlswarm.models.local_specs import WEIGHTS_DIR, weights_digest
from parlswarm.models.nano import write_settings
from parlswarm.models.ship import ShipError, ship


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "weights"
    root.mkdir()
    monkeypatch.setattr("parlswarm.models.local_specs.WEIGHTS_DIR", root)
    return root


def _adapter(folder: Path, base_dir: Path, base_spec: str, r: int = 2) -> Path:
    """A LoRA adapter on the model in ``base_dir`` whose update is not zero, saved as a run saves one."""
    lm = LocalModel.from_pretrained(base_dir)
    model = add_adapter(lm.model, LoraSettings(r=r, alpha=2 * r))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text("peft's model card\n")
    write_settings(folder, LocalSettings(tool_format="compact", base=base_spec, base_digest=weights_digest(base_spec)))
    return folder


def test_a_whole_model_ships_and_loads_by_name(tmp_path: Path, weights: Path) -> None:
    source = tiny_policy(tmp_path / "run" / "final")
    earlier = tmp_path / "earlier" / "final"
    earlier.mkdir(parents=True)
    (earlier / "manifest.json").write_text(json.dumps({"git_commit": "old", "steps": 5, "config": {"init": None}}))
    (source / "manifest.json").write_text(json.dumps({"git_commit": "abc", "steps": 3, "config": {"init": str(earlier)}}))
    report = tmp_path / "eval.json"
    report.write_text(json.dumps({
        "model": "hf:run/final", "world_seed": 1000, "split": "test",
        "subagent_lookups": {"lookups": 2, "cell_accuracy": 0.5, "runs": [{"reply": "..."}]},
    }))
    dest = ship(source, "tiny", evaluations=[report], command="nano_eval ...", root=weights)
    assert dest == weights / "tiny"
    assert {p.name for p in dest.iterdir()} == {p.name for p in source.iterdir()}
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["git_commit"] == "abc" and manifest["shipped_from"] == str(source)
    assert manifest["stages"] == [{"init_folder": str(earlier), "git_commit": "old", "steps": 5, "config": {"init": None}}]
    figures = manifest["evaluation"]["figures"]["hf:run/final · world seed 1000 · test"]
    assert figures == {"subagent_lookups": {"lookups": 2, "cell_accuracy": 0.5}}  # transcripts left out
    assert manifest["evaluation"]["command"] == "nano_eval ..."
    lm = load_model("builtin:tiny")
    assert isinstance(lm, LocalModel) and lm.name == "builtin:tiny"
    from parlswarm.parl.train import _policy_path

    assert _policy_path("builtin:tiny") == dest  # a shipped model can be PARL's warm start
    original = LocalModel.from_pretrained(source).model.state_dict()
    assert all(torch.equal(v, original[k]) for k, v in lm.model.state_dict().items())

    with pytest.raises(ShipError, match="exists: pass replace"):
        ship(source, "tiny", root=weights)
    ship(source, "tiny", root=weights, replace=True)  # no manifest of the run's own: still one, naming the source
    assert json.loads((dest / "manifest.json").read_text())["shipped_from"] == str(source)
    assert not list(weights.glob(".*"))  # no staging folder left behind


def test_a_whole_model_ships_as_float16_in_half_the_bytes_and_loads_as_float32(tmp_path: Path, weights: Path) -> None:
    source = tiny_policy(tmp_path / "run" / "final")
    reports = []
    for model, accuracy in (("hf:run/final", 0.5), ("hf:preview/tiny", 0.5)):
        reports.append(tmp_path / f"eval{len(reports)}.json")
        reports[-1].write_text(json.dumps({"model": model, "world_seed": 0, "split": "test", "lookups": {"cell_accuracy": accuracy}}))
    saved = ship(source, "tiny", root=weights, evaluations=reports[:1])
    before = json.loads((saved / "manifest.json").read_text())["evaluation"]
    # In place, as the nano shipped again, with the figures of the float16 weights.
    half = ship(saved, "tiny", root=weights, dtype="float16", replace=True, evaluations=reports[1:])
    tensors, original = load_file(str(half / "model.safetensors")), load_file(str(source / "model.safetensors"))
    assert tensors.keys() == original.keys() and all(t.dtype == torch.float16 for t in tensors.values())
    assert (half / "model.safetensors").stat().st_size < 0.6 * (source / "model.safetensors").stat().st_size
    assert json.loads((half / "config.json").read_text())["dtype"] == "float16"
    manifest = json.loads((half / "manifest.json").read_text())
    assert manifest["dtype"] == "float16" and manifest["shipped_from"] == str(source)  # its first shipping stays
    assert manifest["reshipped"] == [{"from": str(saved), "dtype": "float16", "evaluation_before": before}]
    assert list(manifest["evaluation"]["figures"]) == ["hf:preview/tiny · world seed 0 · test"]
    lm = load_model("builtin:tiny")
    loaded = lm.model.state_dict()
    assert all(v.dtype == torch.float32 for v in loaded.values())
    assert all(torch.equal(loaded[k], v.to(torch.float16).float()) for k, v in original.items())  # the rounding, no more
    ids = torch.tensor([[5, 17, 42, 7]])
    assert torch.allclose(lm.model(ids).logits, LocalModel.from_pretrained(source).model(ids).logits, atol=1e-2)

    bare = tmp_path / "bare"
    bare.mkdir()
    for file in source.iterdir():
        if file.suffix != ".safetensors":
            (bare / file.name).write_bytes(file.read_bytes())
    with pytest.raises(ShipError, match="keeps its weights in no .safetensors file"):
        ship(bare, "bare", root=weights, dtype="float16")
    assert not (weights / "bare").exists() and not list(weights.glob(".*"))


def test_an_adapter_ships_in_float16_without_its_tokenizer_and_loads_on_its_base(tmp_path: Path, weights: Path) -> None:
    ship(tiny_policy(tmp_path / "base"), "tinybase", root=weights)
    source = _adapter(tmp_path / "adapter", weights / "tinybase", "builtin:tinybase")
    dest = ship(source, "tinylora", root=weights)
    names = {p.name for p in dest.iterdir()}
    assert names == {"adapter_config.json", "adapter_model.safetensors", "parlswarm.json", "manifest.json"}
    assert all(t.dtype == torch.float16 for t in load_file(str(dest / "adapter_model.safetensors")).values())
    assert json.loads((dest / "manifest.json").read_text())["dtype"] == "float16"
    assert json.loads((dest / "adapter_config.json").read_text())["base_model_name_or_path"] == "builtin:tinybase"
    assert (dest / "adapter_model.safetensors").stat().st_size < (source / "adapter_model.safetensors").stat().st_size

    shipped = load_model("builtin:tinylora")
    unshipped = LocalModel.from_pretrained(source)
    base = LocalModel.from_pretrained(weights / "tinybase").model.state_dict()
    moved = 0
    for k, v in shipped.model.state_dict().items():
        assert v.dtype == torch.float32  # merged into the float32 base
        assert torch.allclose(v, unshipped.model.state_dict()[k], atol=1e-3)  # float16 rounding alone
        moved += not torch.equal(v, base[k])
    assert moved  # the adapter is in the merged weights
    assert shipped.tokenizer.get_vocab() == unshipped.tokenizer.get_vocab()  # the base's tokenizer


def test_an_adapter_refuses_a_base_that_was_shipped_over_since_it_was_trained(
    tmp_path: Path, weights: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ship(tiny_policy(tmp_path / "base"), "tinybase", root=weights)
    adapter = _adapter(tmp_path / "adapter", weights / "tinybase", "builtin:tinybase")
    LocalModel.from_pretrained(adapter)  # on the base it was trained on

    other = tiny_policy(tmp_path / "other")
    state = LocalModel.from_pretrained(other).model.state_dict()
    from safetensors.torch import save_file

    save_file({k: v + 0.01 for k, v in state.items()}, str(other / "model.safetensors"), metadata={"format": "pt"})
    ship(other, "tinybase", root=weights, replace=True)  # builtin:tinybase is now other weights
    with pytest.raises(ModelSpecError, match=r"trained on builtin:tinybase when its weights had sha256 \w{12}; "
                       r"builtin:tinybase now holds other weights \(\w{12}\)"):
        LocalModel.from_pretrained(adapter)

    # Named by a folder holding the weights it was trained on, it loads again.
    settings = LocalSettings.model_validate_json((adapter / "parlswarm.json").read_text())
    write_settings(adapter, settings.model_copy(update={"base": str(tmp_path / "base")}))
    LocalModel.from_pretrained(adapter)
    # An adapter saved before digests were recorded still loads, with a warning that nothing was checked.
    write_settings(adapter, settings.model_copy(update={"base_digest": None}))
    with caplog.at_level("WARNING"):
        LocalModel.from_pretrained(adapter)
    assert "records no digest of its base builtin:tinybase" in caplog.text


def test_what_cannot_ship_is_refused_by_name(tmp_path: Path, weights: Path) -> None:
    base = tiny_policy(tmp_path / "base")
    with pytest.raises(ShipError, match="adapter on .*which a fresh install cannot load"):
        ship(_adapter(tmp_path / "adapter", base, str(base)), "local", root=weights)
    with pytest.raises(ShipError, match="has no parlswarm.json"):
        ship(tmp_path, "empty", root=weights)
    with pytest.raises(ShipError, match="cannot ship as '../x'"):
        ship(base, "../x", root=weights)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ShipError, match="bad.json: not a benchmarks/nano_eval.py --out report"):
        ship(base, "ok", evaluations=[bad], root=weights)
    assert not (weights / "ok").exists() and not list(weights.iterdir())  # nothing half-shipped
    with pytest.raises(ModelSpecError, match=r"no built-in model 'nothing' .*\(shipped: none\)"):
        load_model("builtin:nothing")


def test_a_round_on_a_shipped_model_takes_its_recorded_history_and_does_not_loop(tmp_path: Path, weights: Path) -> None:
    # builtin:tiny went on training itself (its init is its own folder) and was shipped over
    # itself; a third round starts from it. Its manifest holds its history as shipped.
    shipped = weights / "tiny"
    ship(tiny_policy(tmp_path / "first"), "tiny", root=weights)
    first = {"git_commit": "one", "steps": 1, "config": {"init": None}}
    second = {"git_commit": "two", "steps": 2, "config": {"init": str(shipped)}, "stages": [first]}
    (shipped / "manifest.json").write_text(json.dumps(second))
    source = tiny_policy(tmp_path / "third")
    (source / "manifest.json").write_text(json.dumps({"git_commit": "three", "steps": 3, "config": {"init": str(shipped)}}))
    ship(source, "tiny", root=weights, replace=True)
    stages = json.loads((shipped / "manifest.json").read_text())["stages"]
    assert [st["git_commit"] for st in stages] == ["one", "two"]  # then "three" itself; once each


def test_ship_cli_names_what_is_wrong(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "ship", str(tmp_path / "missing"), "--name", "x"])
    assert result.exit_code != 0 and "has no parlswarm.json" in str(result.exception or result.output)
    policy = tiny_policy(tmp_path / "policy")
    result = CliRunner().invoke(app, ["train", "ship", str(policy), "--name", "x", "--keep-last"])
    assert result.exit_code != 0 and "pass fold too" in " ".join(str(result.exception or result.output).split())


def test_builtin_names_the_shipped_models() -> None:
    from parlswarm.models.local_specs import BUILTIN_DIR, builtin_dir, builtin_names

    assert "nano" in builtin_names() and builtin_dir() == BUILTIN_DIR == builtin_dir("nano")


def test_a_stage_whose_init_folder_holds_other_weights_now_ends_the_known_history(tmp_path: Path, weights: Path) -> None:
    # A round started from folder A (recorded as init_digest); A was trained on again since.
    # Shipping the round must not take A's present manifest as the history of its weights.
    first = tiny_policy(tmp_path / "a")
    (first / "manifest.json").write_text(json.dumps({"git_commit": "a", "config": {"init": None}}))
    started_from = weights_digest(str(first))
    source = tiny_policy(tmp_path / "round")
    round_manifest = {"git_commit": "round", "config": {"init": str(first)}, "init_digest": started_from}
    (source / "manifest.json").write_text(json.dumps(round_manifest))
    ship(source, "kept", root=weights)
    assert [st["git_commit"] for st in json.loads((weights / "kept" / "manifest.json").read_text())["stages"]] == ["a"]

    (weights_file,) = first.glob("*.safetensors")
    tensors = load_file(str(weights_file))
    save_file({k: v + 1 for k, v in tensors.items()}, str(weights_file))  # A now holds other weights
    ship(source, "moved", root=weights)
    stages = json.loads((weights / "moved" / "manifest.json").read_text())["stages"]
    assert len(stages) == 1 and stages[0]["init_digest"] == started_from and "not known" in stages[0]["unknown"]


def test_rounds_shipped_over_their_own_init_still_give_the_history_before_them(tmp_path: Path, weights: Path) -> None:
    # Round 1 started from builtin:tiny (weights W0, whose history is "zero") and was shipped
    # over it; round 2 started from round 1's own folder. builtin:tiny no longer holds W0, but
    # its manifest is round 1's, which started from W0 too: its stages are W0's history.
    ship(tiny_policy(tmp_path / "w0"), "tiny", root=weights)
    shipped = weights / "tiny"
    (shipped / "manifest.json").write_text(json.dumps({"git_commit": "zero", "config": {"init": None}, "stages": []}))
    w0 = weights_digest(str(shipped))
    round1 = tiny_policy(tmp_path / "round1")
    (weights_file,) = round1.glob("*.safetensors")
    save_file({k: v + 1 for k, v in load_file(str(weights_file)).items()}, str(weights_file))  # trained: not W0
    (round1 / "manifest.json").write_text(json.dumps({"git_commit": "one", "config": {"init": str(shipped)}, "init_digest": w0}))
    ship(round1, "tiny", root=weights, replace=True)
    assert [st["git_commit"] for st in json.loads((shipped / "manifest.json").read_text())["stages"]] == ["zero"]

    round2 = tiny_policy(tmp_path / "round2")
    (weights_file,) = round2.glob("*.safetensors")
    save_file({k: v + 2 for k, v in load_file(str(weights_file)).items()}, str(weights_file))  # trained: neither W0 nor round 1
    round2_manifest = {"git_commit": "two", "config": {"init": str(round1)}, "init_digest": weights_digest(str(round1))}
    (round2 / "manifest.json").write_text(json.dumps(round2_manifest))
    ship(round2, "tiny", root=weights, replace=True)
    stages = json.loads((shipped / "manifest.json").read_text())["stages"]
    assert [st.get("git_commit") for st in stages] == ["zero", "one"]  # then "two" itself
    assert not any("unknown" in st for st in stages)

    # Round 3 started from round 2's folder and is shipped over builtin:tiny again: the walk
    # reaches round 1's init (builtin:tiny, now round 2) and finds W0's history before the
    # stage of round 2's record that started from W0.
    round3 = tiny_policy(tmp_path / "round3")
    round3_manifest = {"git_commit": "three", "config": {"init": str(round2)}, "init_digest": weights_digest(str(round2))}
    (round3 / "manifest.json").write_text(json.dumps(round3_manifest))
    ship(round3, "tiny", root=weights, replace=True)
    stages = json.loads((shipped / "manifest.json").read_text())["stages"]
    assert [st.get("git_commit") for st in stages] == ["zero", "one", "two"]  # then "three" itself
    assert not any("unknown" in st for st in stages)


def _update(model: LocalModel, base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What the adapters merged into ``model`` add to each weight of ``base``."""
    return {k: v.double() - base[k].double() for k, v in model.model.state_dict().items()}


def test_an_adapter_on_an_adapter_folds_into_one_on_the_portable_base(tmp_path: Path, weights: Path) -> None:
    ship(tiny_policy(tmp_path / "base"), "tinybase", root=weights)
    first = _adapter(tmp_path / "first", weights / "tinybase", "builtin:tinybase")
    second = _adapter(tmp_path / "second", first, str(first))  # a PARL checkpoint on its SFT warm start
    (second / "manifest.json").write_text(json.dumps({"git_commit": "parl", "config": {"policy": str(first)}}))
    (first / "manifest.json").write_text(json.dumps({"git_commit": "sft", "config": {"init": "builtin:tinybase"}}))
    with pytest.raises(ShipError, match="fold the two into one"):
        ship(second, "parl", root=weights)
    with pytest.raises(ShipError, match="rank and keep_last apply to a folded adapter"):
        ship(second, "parl", root=weights, rank=2)

    dest = ship(second, "parl", root=weights, fold=True)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["folded"]["exact"] and manifest["folded"]["rank"] == 4  # rank 2 + rank 2
    assert manifest["folded"]["adapters"] == [str(first), str(second)]
    # A PARL config's policy is where it started; the SFT round's init, the shipped base, before it.
    assert [s.get("git_commit") for s in manifest["stages"]] == [None, "sft"]
    assert json.loads((dest / "parlswarm.json").read_text())["base"] == "builtin:tinybase"
    assert not list(weights.glob(".*"))  # neither staging nor folding folder left behind

    base = LocalModel.from_pretrained(weights / "tinybase").model.state_dict()
    chained = _update(LocalModel.from_pretrained(second), base)
    folded = _update(load_model("builtin:parl"), base)  # type: ignore[arg-type]
    assert any(v.abs().max() > 1e-2 for v in chained.values())
    for k, v in chained.items():
        assert torch.allclose(folded[k], v, atol=2e-3)  # float16 rounding alone

    # At rank 1 the fold is the best rank-1 update of each layer: it keeps what it says it keeps.
    dest = ship(second, "parl1", root=weights, fold=True, rank=1)
    record = json.loads((dest / "manifest.json").read_text())["folded"]
    assert not record["exact"] and record["rank"] == 1 and 0 < record["kept"] < 1
    assert record["worst_layer_kept"] <= record["kept"]
    approx = _update(load_model("builtin:parl1"), base)  # type: ignore[arg-type]
    lost = sum(float(((approx[k] - v) ** 2).sum()) for k, v in chained.items())
    whole = sum(float((v**2).sum()) for v in chained.values())
    assert abs((1 - lost / whole) - record["kept"]) < 0.01


def _layer_updates(folder: Path) -> dict[str, torch.Tensor]:
    """Each layer's update ``s · B @ A`` of the adapter saved in ``folder``, as full float64 matrices."""
    config = json.loads((folder / "adapter_config.json").read_text())
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    scale = config["lora_alpha"] / config["r"]
    return {
        k[: -len(".lora_A.weight")]: scale * tensors[k.replace("lora_A", "lora_B")].double() @ a.double()
        for k, a in tensors.items() if k.endswith(".lora_A.weight")
    }


def test_a_fold_can_keep_the_last_adapter_whole_and_says_how_much_of_it_any_fold_keeps(tmp_path: Path) -> None:
    from parlswarm.models.fold import Folded, fold

    base = tiny_policy(tmp_path / "base")
    first = _adapter(tmp_path / "first", base, str(base), r=3)  # the warm start
    second = _adapter(tmp_path / "second", first, str(first), r=2)  # the run being shipped
    one, two = _layer_updates(first), _layer_updates(second)

    def folded(f: Folded) -> dict[str, torch.Tensor]:
        return {k: f.tensors[k + ".lora_B.weight"].double() @ f.tensors[k + ".lora_A.weight"].double() for k in one}

    plain, whole_last = fold([first, second], rank=3), fold([first, second], rank=3, keep_last=True)
    assert plain.rank == whole_last.rank == 3 and not plain.exact and not whole_last.exact
    for layer, update in one.items():
        u, s, vh = torch.linalg.svd(update)  # keeping the last whole leaves rank 1 for the first
        assert torch.allclose(folded(whole_last)[layer], s[0] * torch.outer(u[:, 0], vh[0]) + two[layer], atol=1e-5)
    for f in (plain, whole_last):
        lost = sum(float(((one[k] + two[k] - v) ** 2).sum()) for k, v in folded(f).items())
        assert abs((1 - lost / sum(float(((one[k] + two[k]) ** 2).sum()) for k in one)) - f.kept) < 1e-5
    assert whole_last.kept < plain.kept  # the best rank-3 fold is the best in squared error...
    assert whole_last.last_kept == 1.0  # ...but keeps of the last adapter only what lies in its top spaces
    projected = 0.0
    for layer, update in two.items():
        u, _, vh = torch.linalg.svd(one[layer] + update)
        projected += float((u[:, :3] @ u[:, :3].T @ update @ vh[:3].T @ vh[:3]).square().sum())
    assert abs(projected / sum(float(v.square().sum()) for v in two.values()) - plain.last_kept) < 1e-5
    assert plain.last_kept < 1
    exact = fold([first, second], keep_last=True)
    assert exact.exact and exact.rank == 5 and abs(exact.kept - 1) < 1e-9
    with pytest.raises(ValueError, match="cannot keep .*second.* whole and anything of the adapters before it"):
        fold([first, second], rank=2, keep_last=True)


def test_a_fold_checks_every_link_against_the_base_it_was_trained_on(tmp_path: Path, weights: Path) -> None:
    from parlswarm.models.fold import adapter_chain

    base = tiny_policy(tmp_path / "base")
    first = _adapter(tmp_path / "first", base, str(base))
    second = _adapter(tmp_path / "second", first, str(first))
    chain, settings = adapter_chain(second)
    assert chain == [first, second] and settings.base == str(base)
    with pytest.raises(ShipError, match="folds into an adapter on .*which a fresh install cannot load either"):
        ship(second, "local", root=weights, fold=True)
    tensors = load_file(str(first / "adapter_model.safetensors"))
    save_file({k: v * 2 for k, v in tensors.items()}, str(first / "adapter_model.safetensors"))  # trained on since
    with pytest.raises(ModelSpecError, match="now holds other weights"):
        adapter_chain(second)
    assert not list(weights.iterdir())


def test_a_parl_evaluation_goes_into_the_manifest_a_row_per_policy_and_budget(tmp_path: Path, weights: Path) -> None:
    rows = [
        {"condition": "warm start", "seed": None, "critical_budget": 8, "eval_world_seed": 77, "tasks": 8, "item_f1": 0.69},
        {"condition": "B", "seed": 0, "critical_budget": 8, "eval_world_seed": 77, "tasks": 8, "item_f1": 0.91},
        {"condition": "warm start", "seed": None, "policy": "runs/x/final", "critical_budget": 24, "eval_world_seed": 77,
         "tasks": 8, "item_f1": 0.7},
        {"condition": "warm start", "seed": None, "policy": "runs/x/final", "critical_budget": 8, "eval_world_seed": 78,
         "eval_split": "dev", "tasks": 8, "item_f1": 0.77},
    ]
    results = tmp_path / "results.json"
    results.write_text(json.dumps(rows))
    dest = ship(tiny_policy(tmp_path / "run"), "evaluated", evaluations=[results], command="parl_experiments ...", root=weights)
    figures = json.loads((dest / "manifest.json").read_text())["evaluation"]["figures"]
    assert figures == {
        "warm start · world seed 77 · test · 8 critical steps": {"tasks": 8, "item_f1": 0.69},
        "B seed 0 · world seed 77 · test · 8 critical steps": {"tasks": 8, "item_f1": 0.91},
        "warm start (runs/x/final) · world seed 77 · test · 24 critical steps": {"tasks": 8, "item_f1": 0.7},
        "warm start (runs/x/final) · world seed 78 · dev · 8 critical steps": {"tasks": 8, "item_f1": 0.77},
    }


def test_an_adapter_ships_as_int8_rows_and_loads_to_merge_and_to_train_on(tmp_path: Path, weights: Path) -> None:
    from parlswarm.models.adapter import ADAPTER_INT8, adapter_tensors, load_adapter
    from parlswarm.models.fold import fold

    ship(tiny_policy(tmp_path / "base"), "tinybase", root=weights)
    source = _adapter(tmp_path / "adapter", weights / "tinybase", "builtin:tinybase", r=16)
    with pytest.raises(ShipError, match="whole model, which ships as saved or as float16: int8 is for adapters"):
        ship(weights / "tinybase", "whole8", root=weights, dtype="int8")
    half = ship(source, "tiny16", root=weights)
    dest = ship(source, "tiny8", root=weights, dtype="int8")
    assert {p.name for p in dest.iterdir()} == {"adapter_config.json", ADAPTER_INT8, "parlswarm.json", "manifest.json"}
    assert json.loads((dest / "manifest.json").read_text())["dtype"] == "int8"
    # A row of rank 16 is 16 bytes and a float32 scale, against 32 bytes in float16; on a model
    # this small the file's header (a name per tensor, and one per scale) is a good part of it.
    assert (dest / ADAPTER_INT8).stat().st_size < 0.8 * (half / "adapter_model.safetensors").stat().st_size

    saved = adapter_tensors(source)
    restored = adapter_tensors(dest)
    assert restored.keys() == saved.keys()
    for k, v in saved.items():
        # Each element within half a step of its row's scale (the row's largest magnitude / 127).
        step = v.abs().amax(dim=1, keepdim=True) / 127
        assert torch.all((restored[k] - v).abs() <= step / 2 + 1e-7)

    base = LocalModel.from_pretrained(weights / "tinybase").model.state_dict()
    exact = _update(LocalModel.from_pretrained(source), base)
    shipped = _update(load_model("builtin:tiny8"), base)  # type: ignore[arg-type]
    lost = sum(float(((shipped[k] - v) ** 2).sum()) for k, v in exact.items())
    assert 0 < lost < 1e-4 * sum(float((v**2).sum()) for v in exact.values())

    # A later round trains on it (SFT from a shipped adapter): the expanded weights, trainable.
    trainable = load_adapter(LocalModel.from_pretrained(weights / "tinybase").model, dest, trainable=True)
    lora = {n: p for n, p in trainable.named_parameters() if "lora_" in n}
    assert lora and all(p.requires_grad for p in lora.values())
    assert fold([dest]).exact  # and a chain reads it too

    # Shipped again over itself as int8 (to make room for another model): the record of where its
    # weights came from stays, the new shipping is added, the float16 file goes.
    # Its run went on training an earlier model shipped under the same name, so its init names its own folder.
    history = {"evaluation": {"figures": {"f": 1}}, "config": {"init": "builtin:tiny16"}, "stages": [{"model": "first"}]}
    (half / "manifest.json").write_text(json.dumps({**json.loads((half / "manifest.json").read_text()), **history}))
    again = ship(half, "tiny16", root=weights, dtype="int8", replace=True)
    manifest = json.loads((again / "manifest.json").read_text())
    assert manifest["shipped_from"] == str(source) and manifest["reshipped"] == [{"from": str(half), "dtype": "int8"}]
    assert manifest["stages"] == [{"model": "first"}]  # as it was: not itself again
    assert manifest["dtype"] == "int8" and manifest["evaluation"] == {"figures": {"f": 1}}
    assert {p.name for p in again.iterdir()} == {"adapter_config.json", ADAPTER_INT8, "parlswarm.json", "manifest.json"}
    assert isinstance(load_model("builtin:tiny16"), LocalModel) and not list(weights.glob(".*"))


def test_int8_keeps_zero_rows_and_refuses_what_is_not_a_weight_matrix() -> None:
    from parlswarm.models.adapter import to_int8

    stored = to_int8({"w": torch.tensor([[0.0, 0.0], [1.0, -0.5]])})
    assert stored["w"].dtype == torch.int8 and stored["w"].tolist() == [[0, 0], [127, -64]]
    with pytest.raises(ValueError, match="only 2-D floating weights"):
        to_int8({"v": torch.ones(3)})


def test_an_adapter_that_went_on_training_another_takes_its_init_as_the_stage_before(tmp_path: Path, weights: Path) -> None:
    # An SFT round that continued the adapter in ``earlier`` (init), both on the same whole base.
    ship(tiny_policy(tmp_path / "base"), "tinybase", root=weights)
    earlier = _adapter(tmp_path / "earlier", weights / "tinybase", "builtin:tinybase")
    (earlier / "manifest.json").write_text(json.dumps({"git_commit": "one", "config": {"init": "builtin:tinybase"}}))
    later = _adapter(tmp_path / "later", weights / "tinybase", "builtin:tinybase")
    (later / "manifest.json").write_text(json.dumps({"git_commit": "two", "config": {"init": str(earlier)}}))
    stages = json.loads((ship(later, "continued", root=weights) / "manifest.json").read_text())["stages"]
    assert [s.get("git_commit") for s in stages] == [None, "one"]  # the shipped base, then the earlier round


def test_ship_cli_into_a_preview_folder_leaves_the_shipped_weights(tmp_path: Path) -> None:
    shipped = sorted(p.name for p in WEIGHTS_DIR.iterdir())
    preview = tmp_path / "preview"
    result = CliRunner().invoke(app, ["train", "ship", str(tiny_policy(tmp_path / "policy")), "--name", "nano", "--into", str(preview)])
    assert result.exit_code == 0, result.output
    assert f"--model hf:{preview / 'nano'}" in " ".join(result.output.split())
    assert (preview / "nano" / "manifest.json").is_file() and sorted(p.name for p in WEIGHTS_DIR.iterdir()) == shipped
    assert isinstance(load_model(f"hf:{preview / 'nano'}"), LocalModel)  # an evaluation loads it as a folder
    both = CliRunner().invoke(app, ["train", "ship", str(preview / "nano"), "--name", "x", "--into", str(preview), "--int8", "--float16"])
    assert both.exit_code != 0 and "--int8 and --float16" in str(both.exception) and not (preview / "x").exists()
