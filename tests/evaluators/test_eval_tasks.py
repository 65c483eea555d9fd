"""The task generators produce what their definitions say: hand-made layouts, labels only where
they belong, seeded reproducibility, the generator's device respected."""
import pytest
import torch

from evaluators.tasks import IGNORE, MQAR_CONFIGS, TASKS, accuracy, make_task


def gen(seed=0):
    return torch.Generator(device="cpu").manual_seed(seed)


@pytest.mark.parametrize("name", sorted(TASKS))
@pytest.mark.parametrize("split", ["train", "test"])
def test_shapes_ranges_and_reproducibility(name, split):
    t = make_task(name)
    x, y = t.sample(8, gen(3), split)
    assert x.shape == y.shape == (8, t.input_len)
    assert x.dtype == y.dtype == torch.long
    assert x.device == gen().device
    assert 0 <= int(x.min()) and int(x.max()) < t.vocab_size
    scored = y[y != IGNORE]
    assert scored.numel() > 0 and int(scored.min()) >= 0 and int(scored.max()) < t.vocab_size
    x2, y2 = t.sample(8, gen(3), split)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = t.sample(8, gen(4), split)
    assert not torch.equal(x, x3)


def test_in_context_recall_scores_exactly_the_values_of_repeated_keys():
    t = make_task("in_context_recall", vocab_size=16, seq_len=64)
    x, y = t.sample(32, gen(), "test")
    n_keys = 8
    for b in range(32):
        # re-attach the value that the shift moved into the targets
        seq = x[b].tolist() + [int(y[b, -1]) if y[b, -1] != IGNORE else -1]
        seen = {}
        for p in range(0, len(seq) - 1, 2):
            k, v = seq[p], seq[p + 1]
            assert k < n_keys and (v == -1 or v >= n_keys)
            if k in seen:
                assert y[b, p] == seen[k]         # output at the key position = its value
            else:
                assert y[b, p] == IGNORE
                seen[k] = v
            assert y[b, p + 1] == IGNORE if p + 1 < len(y[b]) else True
        assert y[b, -1] != IGNORE                   # the final probe is always scored
    xt, yt = t.sample(4, gen(), "train")
    assert torch.equal(yt[:, :-1], xt[:, 1:])       # training is plain language modelling


def test_noisy_recall_never_scores_noise():
    t = make_task("noisy_in_context_recall", vocab_size=32, seq_len=128, noise_vocab_size=16, frac_noise=0.5)
    x, y = t.sample(64, gen(), "test")
    ns = 32 - 16
    noise = x >= ns
    assert 0.3 < noise.float().mean() < 0.6
    assert (y[noise] == IGNORE).all()               # a noise key is never a query
    assert ((y == IGNORE) | ((y >= ns // 2) & (y < ns))).all()


def test_fuzzy_recall_probe_repeats_an_earlier_pair_and_pads_left():
    t = make_task("fuzzy_in_context_recall", vocab_size=16, seq_len=64, k_motif_size=3, v_motif_size=3)
    x, y = t.sample(32, gen(), "test")
    pad = 15
    for b in range(32):
        seq = x[b].tolist() + [int(y[b, -1])]
        n_pad = next(i for i, v in enumerate(seq) if v != pad)
        assert all(v != pad for v in seq[n_pad:])
        # the last value tokens are scored; the key before them has 3 tokens (test keys are max size)
        sc = (y[b] != IGNORE).nonzero().flatten().tolist()
        assert sc and sc[-1] == len(y[b]) - 1
        tail = [int(y[b, i]) for i in sc]
        assert all(7 <= v < 15 for v in tail)       # values come from the value vocabulary
        # the probe (key + value) occurs earlier in the sequence
        vlen = 1
        while len(sc) >= vlen + 1 and sc[-vlen - 1] == sc[-1] - vlen:
            vlen += 1
        probe = seq[len(seq) - vlen - 3:]
        body = seq[:len(seq) - vlen - 3]
        assert any(body[i:i + len(probe)] == probe for i in range(len(body)))


def test_selective_copying_layout():
    t = make_task("selective_copying", vocab_size=8, seq_len=20, num_tokens_to_copy=4)
    x, y = t.sample(16, gen(), "test")
    blank, copy = 6, 7
    head = 20 - 4 - 1
    assert (x[:, head] == copy).all()
    assert (x[:, head + 1:] == blank).all()
    assert (y[:, :head + 1] == IGNORE).all()
    for b in range(16):
        data = [v for v in x[b, :head].tolist() if v != blank]
        assert data == y[b, head + 1:].tolist()


def test_compression_layout():
    t = make_task("compression", vocab_size=10, seq_len=6)
    x, y = t.sample(8, gen(), "test")
    assert x.shape[1] == 10
    assert (x[:, 5] == 9).all() and (x[:, 6:] == 8).all()
    assert (y[:, :5] == IGNORE).all()
    assert torch.equal(y[:, 5:], x[:, :5])


def test_memorization_uses_one_fixed_bijection():
    t = make_task("memorization", vocab_size=17, seq_len=8)
    m = t.kv_map("cpu")
    assert sorted(m.tolist()) == list(range(8, 16))
    for s in (0, 1):
        x, y = t.sample(16, gen(s), "test")
        assert (x[:, 1::2] == 16).all() and (y[:, 0::2] == IGNORE).all()
        assert torch.equal(y[:, 1::2], m[x[:, 0::2]])
    assert torch.equal(make_task("memorization", vocab_size=17, seq_len=8).kv_map("cpu"), m)


def test_mqar_hand_checked_and_power_law():
    t = make_task("mqar", vocab_size=64, seq_len=32, num_kv_pairs=4)
    x, y = t.sample(256, gen(), "test")
    assert ((y != IGNORE).sum(1) == 4).all()
    for b in range(256):
        keys, vals = x[b, 0:8:2].tolist(), x[b, 1:8:2].tolist()
        assert len(set(keys)) == 4 and all(1 <= k < 32 for k in keys) and all(32 <= v < 64 for v in vals)
        pos = (y[b] != IGNORE).nonzero().flatten().tolist()
        assert all(p >= 8 and (p - 8) % 2 == 0 for p in pos)
        assert sorted(x[b, pos].tolist()) == sorted(keys)
        for p in pos:
            assert y[b, p] == vals[keys.index(int(x[b, p]))]
    # power law with a = 0.01: queries cluster right after the context
    gaps = ((y != IGNORE).nonzero()[:, 1] - 8) // 2
    assert gaps.float().mean() < 0.8 * (12 - 1) / 2 * 1.0
    assert MQAR_CONFIGS == ((64, 4), (128, 8), (256, 16), (512, 64))
    for T, K in MQAR_CONFIGS:
        make_task("mqar", vocab_size=8192, seq_len=T, num_kv_pairs=K)


def test_accuracy_counts_only_scored_positions():
    y = torch.tensor([[IGNORE, 2, IGNORE, 1]])
    logits = torch.nn.functional.one_hot(torch.tensor([[0, 2, 0, 0]]), 3).float()
    c, n = accuracy(logits, y)
    assert int(c) == 1 and int(n) == 2


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        make_task("nope")
    with pytest.raises(ValueError, match="no parameter 'seqlen'"):
        make_task("mqar", seqlen=3)
    with pytest.raises(ValueError, match="num_tokens_to_copy"):
        make_task("selective_copying", seq_len=10, num_tokens_to_copy=8)
