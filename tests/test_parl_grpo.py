"""GRPO pieces: group advantages, masks, the clipped loss, and one real update on a tiny model."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from parlswarm.parl.grpo import (  # noqa: E402
    Sample,
    batch_tensors,
    group_advantages,
    grpo_loss,
    keep_old_logprobs,
    pad_old_logprobs,
    padded_loss,
    token_logprobs,
)


def _tiny_llama() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    return transformers.LlamaForCausalLM(config)


def test_group_advantages_by_hand() -> None:
    adv = group_advantages([1.0, 0.0, 0.5, 0.5], [0, 0, 1, 1])
    # group 0: mean 0.5, std 0.5 -> +1, -1; group 1: all equal -> 0, 0
    assert adv == pytest.approx([1.0, -1.0, 0.0, 0.0], abs=1e-5)
    assert group_advantages([3.0, 1.0], [7, 7], scale=False) == [1.0, -1.0]


def test_a_flat_group_of_any_size_gets_advantages_of_exactly_zero() -> None:
    # sum / n of three 0.1s or six 0.7s is not 0.1 or 0.7: the advantages would come out near -1e-11,
    # and a turn is skipped (skip_zero_advantage) only at exactly 0.
    rewards = [0.1] * 3 + [0.7] * 6 + [1.0, 0.0]
    groups = [0] * 3 + [1] * 6 + [2, 2]
    assert group_advantages(rewards, groups)[:9] == [0.0] * 9
    assert group_advantages(rewards, groups, scale=False)[:9] == [0.0] * 9
    assert group_advantages(rewards, groups)[9:] == pytest.approx([1.0, -1.0], abs=1e-5)


def test_completion_mask_covers_only_generated_tokens() -> None:
    samples = [Sample([1, 2, 3], [4, 5], [-0.1, -0.2]), Sample([1], [6, 7, 8], [-1.0, -2.0, -3.0])]
    ids, attention, mask = batch_tensors(samples, pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 4, 5], [1, 6, 7, 8, 0]]
    assert attention.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    # Target j is token j+1: row 0 trains targets 4, 5 (positions 2, 3); row 1 targets 6, 7, 8.
    assert mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 0]]
    old = pad_old_logprobs(samples, ids.shape[1])
    assert old.flatten().tolist() == pytest.approx([0, 0, -0.1, -0.2, -1.0, -2.0, -3.0, 0])


def test_loss_on_policy_is_minus_the_advantage_and_clips() -> None:
    mask = torch.ones(2, 3)
    logp = torch.zeros(2, 3)
    parts = grpo_loss(logp, logp, torch.tensor([1.0, -0.5]), mask)
    assert float(parts.loss) == pytest.approx(-(1.0 - 0.5) / 2)
    assert parts.clip_fraction == 0.0 and parts.ratio_mean == pytest.approx(1.0)
    # A ratio of e (well above 1.2) with a positive advantage is clipped at 1.2.
    parts = grpo_loss(torch.ones(1, 3), torch.zeros(1, 3), torch.tensor([1.0]), torch.ones(1, 3))
    assert float(parts.loss) == pytest.approx(-1.2) and parts.clip_fraction == 1.0
    # KL to the reference is zero on the reference and positive elsewhere.
    same = grpo_loss(logp, logp, torch.tensor([0.0, 0.0]), mask, ref_logp=logp, kl_coef=0.1)
    assert same.kl == 0.0
    off = grpo_loss(logp, logp, torch.tensor([0.0, 0.0]), mask, ref_logp=logp - 1.0, kl_coef=0.1)
    assert off.kl == pytest.approx(float(torch.exp(torch.tensor(-1.0)) + 1 - 1))


def test_one_update_raises_the_likelihood_of_a_rewarded_completion() -> None:
    model = _tiny_llama()
    good = Sample([1, 2, 3], [4, 5, 6], [])
    bad = Sample([1, 2, 3], [7, 8, 9], [])
    samples = [good, bad]
    ids, attention, mask = batch_tensors(samples, pad_id=0)
    with torch.no_grad():
        before = token_logprobs(model, ids, attention)
    keep_old_logprobs(samples, before)
    old = pad_old_logprobs(samples, ids.shape[1])
    adv = torch.tensor(group_advantages([1.0, 0.0], [0, 0]))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    parts = grpo_loss(token_logprobs(model, ids, attention), old, adv, mask)
    parts.loss.backward()
    opt.step()
    with torch.no_grad():
        after = token_logprobs(model, ids, attention)
    gain = ((after - before) * mask).sum(dim=1)
    assert gain[0] > 0 > gain[1]


def test_token_logprobs_score_tokens_under_the_sampling_temperature() -> None:
    model = _tiny_llama()
    ids, attention, _ = batch_tensors([Sample([1, 2, 3], [4, 5], [])], pad_id=0)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention).logits[0, :-1]
        by_hand = torch.log_softmax(logits / 0.5, dim=-1).gather(1, ids[0, 1:, None])[:, 0]
        tempered = token_logprobs(model, ids, attention, temperature=0.5)[0]
        plain = token_logprobs(model, ids, attention)[0]
    assert torch.allclose(tempered, by_hand, atol=1e-5)
    assert not torch.allclose(tempered, plain)  # T = 0.5 is a sharper distribution than T = 1
    assert torch.allclose(plain, torch.log_softmax(logits, dim=-1).gather(1, ids[0, 1:, None])[:, 0], atol=1e-5)


def test_completion_only_logprobs_equal_the_whole_batchs_where_wanted() -> None:
    model = _tiny_llama()
    # Prompts of different lengths, so rows are padded and completions start at different places.
    samples = [Sample([1, 2, 3, 9, 10, 11], [4, 5], []), Sample([1], [6, 7, 8], []), Sample([2, 3], [], [])]
    ids, attention, mask = batch_tensors(samples, pad_id=0)
    with torch.no_grad():
        whole = token_logprobs(model, ids, attention, temperature=0.7)
        wanted = token_logprobs(model, ids, attention, temperature=0.7, wanted=mask)
    assert wanted.shape == whole.shape
    assert torch.allclose(wanted * mask, whole * mask, atol=1e-5)
    assert (wanted[mask == 0] == 0).all()  # nothing computed outside the completion


@pytest.mark.parametrize("checkpointed", [False, True])
def test_the_update_row_by_row_takes_the_whole_minibatchs_gradient(checkpointed: bool) -> None:
    from parlswarm.parl.parl_config import ParlConfig
    from parlswarm.parl.train import checkpoint_activations, update

    samples = [Sample([1, 2, 3, 9], [4, 5], [], advantage=1.0), Sample([1], [6, 7, 8], [], advantage=-0.5),
               Sample([5, 6], [9, 2], [], advantage=0.25)]
    model = _tiny_llama()
    # By hand: the minibatch's loss in one forward and one backward.
    whole = padded_loss(model, samples, pad_id=0)
    whole.loss.backward()
    expected = [p.grad.clone() for p in model.parameters()]
    # update(): row by row; an optimiser that only records the gradient it was given.
    model.zero_grad()
    if checkpointed:  # recomputed activations, the same gradient
        checkpoint_activations(model)
        assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    model.train()
    seen: list[list[torch.Tensor]] = []

    class Record(torch.optim.SGD):
        def step(self, closure=None):  # type: ignore[no-untyped-def, override]
            seen.append([p.grad.clone() for p in model.parameters()])

    parts = update(model, None, Record(model.parameters(), lr=0.0), samples, 0,
                   ParlConfig(minibatch=3, ppo_epochs=1, max_grad_norm=1e9))
    [got] = seen
    assert all(torch.allclose(g, e, atol=1e-6) for g, e in zip(got, expected))
    assert parts["loss"] == pytest.approx(whole.loss.detach().item(), abs=1e-6)
    assert parts["ratio"] == pytest.approx(whole.ratio_mean, abs=1e-6)


def test_skipping_zero_advantage_turns_leaves_the_weights_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    import parlswarm.parl.train as train_module
    from parlswarm.parl.parl_config import ParlConfig

    def turns(advantages: list[float]) -> list[Sample]:
        return [Sample([1 + n % 5, 2, 3][: 1 + n % 3], [4 + n % 7, 5, 6 + n % 4][: 2 + n % 2], [], advantage=a)
                for n, a in enumerate(advantages)]

    # A step whose group has a signal, with some turns at advantage 0, then a flat step: on the
    # flat one only AdamW's running moments move the weights, so a skip that did not step the
    # optimiser would leave them elsewhere.
    steps = [[1.0, 0.0, -0.5, 0.0, 0.25, 0.0, -0.75], [0.0] * 5]
    forwards: list[int] = []
    real = train_module.token_logprobs

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        forwards[-1] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "token_logprobs", counted)
    models, logged = [], []
    for skip in (False, True):
        model = _tiny_llama()
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
        config = ParlConfig(minibatch=3, ppo_epochs=2, max_grad_norm=0.5, skip_zero_advantage=skip)
        forwards.append(0)
        logged.append([train_module.update(model, None, optimizer, turns(a), 0, config) for a in steps])
        models.append(model)
    plain, skipping = models
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), skipping.parameters()))
    assert not torch.equal(next(_tiny_llama().parameters()), next(skipping.parameters()))  # it did train
    assert forwards[1] < forwards[0]
    # The figures a skipped turn does not change are the same; a flat step has no ratio to give.
    (first_plain, flat_plain), (first_skip, flat_skip) = logged
    assert first_skip["skipped_rows"] == 3 * 2 and flat_skip["skipped_rows"] == 5 * 2
    for key in ("loss", "policy", "kl", "grad_norm"):
        assert first_skip[key] == pytest.approx(first_plain[key], abs=1e-7)
        assert flat_skip[key] == flat_plain[key] == 0.0
    assert "ratio" in first_skip and "ratio" not in flat_skip and "clip_fraction" not in flat_skip
    assert "skipped_rows" not in first_plain and "ratio" in flat_plain  # as logged before the option


def test_a_kl_term_keeps_zero_advantage_turns_in_the_update() -> None:
    from parlswarm.parl.parl_config import ParlConfig
    from parlswarm.parl.train import contributes

    flat = Sample([1], [2], [], advantage=0.0)
    assert not contributes(flat, ParlConfig(skip_zero_advantage=True))
    assert contributes(flat, ParlConfig(skip_zero_advantage=True, kl_coef=0.1))
    assert contributes(flat, ParlConfig())
    assert contributes(Sample([1], [2], [], advantage=-0.3), ParlConfig(skip_zero_advantage=True))
