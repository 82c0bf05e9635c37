"""nnlayers.examples.dates: every format read back by Python's datetime, the ids, the encoder and decoder
blocks (gradcheck, PyTorch parity of the decoder block), the model's gradient (the memory's gradient summed
over two decoder blocks), padding that changes nothing, a short training run, translate, attention_map,
and the model saved and loaded whole."""
import datetime
import re

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.examples import dates
from tests.helpers import importable, require

#: Each template field as Python's strptime reads it ({dth}: the ordinal suffix is removed first).
STRPTIME = {"{d}": "%d", "{dd}": "%d", "{dth}": "%d", "{m}": "%m", "{mm}": "%m", "{Month}": "%B", "{MONTH}": "%B",
            "{Mon}": "%b", "{yyyy}": "%Y", "{Weekday}": "%A", "{Wkd}": "%a"}
EDGES = [datetime.date(1900, 1, 1), datetime.date(2099, 12, 31), datetime.date(2000, 2, 29),
         datetime.date(1999, 5, 3), datetime.date(1987, 9, 30)] + \
        [datetime.date(2024, 10, day) for day in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)]


# -- the data ----------------------------------------------------------------------------------------------

def parse(text: str, template: str) -> datetime.date:
    pattern = template
    for field, code in STRPTIME.items():
        pattern = pattern.replace(field, code)
    if "{dth}" in template:
        text = re.sub(r"(?<=\d)(st|nd|rd|th)\b", "", text)
    return datetime.datetime.strptime(text, pattern).date()


@pytest.mark.parametrize("template", dates.FORMATS)
def test_every_format_reads_back_as_the_same_date(template):
    days = np.random.default_rng(0).integers(0, (dates.LAST_DAY - dates.FIRST_DAY).days + 1, size=200)
    for date in EDGES + [dates.FIRST_DAY + datetime.timedelta(days=int(day)) for day in days]:
        text = dates.format_date(date, template)
        assert parse(text, template) == date, (template, text)
        if "{Weekday}" in template or "{Wkd}" in template:        # the weekday written is the date's own
            assert date.strftime("%A" if "{Weekday}" in template else "%a") in text, text
        assert set(text) <= set(dates.SOURCE_VOCAB.characters), text


def test_the_examples_in_the_comments():
    may3 = datetime.date(1999, 5, 3)
    written = [dates.format_date(may3, template) for template in dates.FORMATS]
    assert written == ["3 May 1999", "May 3, 1999", "Monday, May 3, 1999", "03.05.1999", "3/5/1999", "MAY 3 1999",
                       "1999 May 3", "3rd of May 1999", "May 3rd, 1999", "Mon 3 May 1999", "03-May-1999", "19990503",
                       "1999/05/03", "May 3 1999", "Monday 3rd May 1999"]
    assert [dates.format_date(datetime.date(2001, 1, d), "{dth}") for d in (1, 2, 3, 11, 12, 13, 21, 22, 23, 31)] == \
        ["1st", "2nd", "3rd", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st"]


def test_generate_is_seeded_uniform_over_formats_and_in_range():
    sources, targets = dates.generate(3000, rng=5)
    assert (sources, targets) == dates.generate(3000, rng=5)
    assert sources != dates.generate(3000, rng=6)[0]
    used = [next(k for k, template in enumerate(dates.FORMATS) if _fits(text, template)) for text in sources[:600]]
    assert set(used) == set(range(len(dates.FORMATS)))
    for text, iso in zip(sources[:600], targets[:600]):
        date = datetime.date.fromisoformat(iso)
        assert dates.FIRST_DAY <= date <= dates.LAST_DAY and len(iso) == dates.TARGET_LENGTH
        assert any(_fits(text, template) and parse(text, template) == date for template in dates.FORMATS)
    years = np.array([int(iso[:4]) for iso in targets])
    assert years.min() < 1910 and years.max() > 2089


def _fits(text, template):
    try:
        parse(text, template)
    except ValueError:
        return False
    return True


def test_ids_padding_and_teacher_forcing():
    X = dates.encode_sources(["3/5/1999", "Monday, May 3, 1999"])
    assert X.shape == (2, 19) and X.dtype == np.int64
    assert (X[0, 8:] == dates.PAD_ID).all() and (X[0, :8] != dates.PAD_ID).all() and (X[1] != dates.PAD_ID).all()
    assert dates.SOURCE_VOCAB.decode(X[0, :8]) == "3/5/1999"
    assert dates.encode_sources(["3/5/1999"], length=12).shape == (1, 12)
    with pytest.raises(ValueError, match="longer than length=4"):
        dates.encode_sources(["3/5/1999"], length=4)
    target_in, Y = dates.encode_targets(["1999-05-03"])
    assert dates.TARGET_VOCAB.decode(Y[0]) == "1999-05-03"
    assert dates.TARGET_VOCAB.decode(target_in[0]) == dates.START + "1999-05-0"


# -- the blocks ----------------------------------------------------------------------------------------------

def moved(module, seed):
    """Every parameter away from its initial value (LayerNorm's γ from 1, the biases from 0)."""
    rng = np.random.default_rng(seed)
    for parameter in module.parameters():
        parameter.data += rng.normal(scale=0.2, size=parameter.shape)
    return module


def inputs(rng, N=2, T=4, S=5, D=6):
    mask = np.zeros((N, S), dtype=bool)
    mask[0, 3:] = True                                          # sequence 0: two padded keys
    return rng.normal(size=(N, T, D)), rng.normal(size=(N, S, D)), mask


def test_decoder_block_gradcheck(rng):
    block = moved(dates.DecoderBlock(6, 2, mlp_ratio=2, rng=0), 1)
    X, M, mask = inputs(rng)
    report = nl.gradcheck(block, (X, M, mask))
    assert report.passed
    checked = {check.name for check in report.checks}
    assert {"input 0", "input 1"} <= checked and len(checked) == 2 + 1 + len(block.parameters())
    assert nl.gradcheck(block, (X, M)).passed                    # without a mask: (δX, δM)
    block.forward(X, M)
    assert len(block.backward(np.ones_like(X))) == 2


def test_encoder_block_gradcheck_and_its_mask(rng):
    block = moved(dates.EncoderBlock(6, 3, rng=0), 2)
    _, M, mask = inputs(rng)
    assert nl.gradcheck(block, (M, mask)).passed
    Z = block.forward(M, mask)
    longer = np.concatenate([M, rng.normal(size=(2, 3, 6))], axis=1)      # three more padded positions
    np.testing.assert_allclose(block.forward(longer, np.pad(mask, ((0, 0), (0, 3)), constant_values=True))[:, :5],
                               Z, rtol=1e-12, atol=1e-14)
    attention = block.attention.attention_weights
    assert not attention[0, :, :, 3:].any() and not attention[1, :, :, 5:].any()
    assert nl.gradcheck(block, M).passed                                    # one input: backward returns δX
    block.forward(M)
    assert isinstance(block.backward(np.ones_like(M)), np.ndarray)


def test_decoder_block_matches_a_torch_twin(rng):
    require(importable("torch"), "PyTorch is not installed (pip install torch==2.13.0); parity tests need it")
    import torch
    from torch import nn

    D, H = 6, 2
    block = moved(dates.DecoderBlock(D, H, mlp_ratio=2, rng=0), 3)
    X, M, mask = inputs(rng, N=3, T=4, S=5, D=D)
    mask[2, 1:] = True
    dZ = rng.normal(size=X.shape)

    class TorchDecoderBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2, self.norm3 = nn.LayerNorm(D), nn.LayerNorm(D), nn.LayerNorm(D)
            self.self_attention = nn.MultiheadAttention(D, H, batch_first=True)
            self.cross_attention = nn.MultiheadAttention(D, H, batch_first=True)
            self.fc1, self.fc2 = nn.Linear(D, 2 * D), nn.Linear(2 * D, D)

        def forward(self, X, M, mask):
            T = X.shape[1]
            h = self.norm1(X)
            X1 = X + self.self_attention(h, h, h, attn_mask=torch.ones(T, T, dtype=torch.bool).triu(1),
                                         need_weights=False)[0]
            h = self.norm2(X1)
            X2 = X1 + self.cross_attention(h, M, M, key_padding_mask=mask, need_weights=False)[0]
            return X2 + self.fc2(nn.functional.gelu(self.fc1(self.norm3(X2))))

    twin = TorchDecoderBlock().double()
    t = lambda a: torch.tensor(np.ascontiguousarray(a))                        # noqa: E731
    with torch.no_grad():
        for name in ("norm1", "norm2", "norm3"):
            getattr(twin, name).weight.copy_(t(getattr(block, name).gamma.data))
            getattr(twin, name).bias.copy_(t(getattr(block, name).beta.data))
        for name in ("self_attention", "cross_attention"):
            ours, theirs = getattr(block, name), getattr(twin, name)
            theirs.in_proj_weight.copy_(t(np.concatenate([ours.W_q.data.T, ours.W_k.data.T, ours.W_v.data.T])))
            theirs.in_proj_bias.copy_(t(np.concatenate([ours.b_q.data, ours.b_k.data, ours.b_v.data])))
            theirs.out_proj.weight.copy_(t(ours.W_o.data.T))
            theirs.out_proj.bias.copy_(t(ours.b_o.data))
        for fc, (W, b) in ((twin.fc1, (0, 1)), (twin.fc2, (3, 4))):
            fc.weight.copy_(t(block.mlp.layers[W].W.data.T))
            fc.bias.copy_(t(block.mlp.layers[b].b.data.ravel()))

    Z = block.forward(X, M, mask)
    dX, dM, dmask = block.backward(dZ)
    Xt, Mt = t(X).requires_grad_(), t(M).requires_grad_()
    Zt = twin(Xt, Mt, t(mask))
    Zt.backward(t(dZ))

    def close(ours, theirs, what):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=what)

    close(Z, Zt, "Z")
    close(dX, Xt.grad, "δX")
    close(dM, Mt.grad, "δmemory")
    assert dmask is None
    for name in ("norm1", "norm2", "norm3"):
        close(getattr(block, name).gamma.grad, getattr(twin, name).weight.grad, f"{name} δγ")
        close(getattr(block, name).beta.grad, getattr(twin, name).bias.grad, f"{name} δβ")
    for name in ("self_attention", "cross_attention"):
        ours, theirs = getattr(block, name), getattr(twin, name)
        W, b = theirs.in_proj_weight.grad, theirs.in_proj_bias.grad
        for i, c in enumerate("qkv"):
            close(getattr(ours, f"W_{c}").grad, W[i * D:(i + 1) * D].T, f"{name} δW_{c}")
            close(getattr(ours, f"b_{c}").grad, b[i * D:(i + 1) * D], f"{name} δb_{c}")
        close(ours.W_o.grad, theirs.out_proj.weight.grad.T, f"{name} δW_o")
        close(ours.b_o.grad, theirs.out_proj.bias.grad, f"{name} δb_o")
    for fc, (W, b) in ((twin.fc1, (0, 1)), (twin.fc2, (3, 4))):
        close(block.mlp.layers[W].W.grad, fc.weight.grad.T, "mlp δW")
        close(block.mlp.layers[b].b.grad.ravel(), fc.bias.grad, "mlp δb")


# -- the model -------------------------------------------------------------------------------------------------

def tiny_model(**sizes):
    options = dict(source_size=9, target_size=5, embed=4, heads=2, encoder_blocks=1, decoder_blocks=2, mlp_ratio=1,
                   source_length=6, target_length=4, rng=0, dtype=np.float64)
    return moved(dates.Seq2SeqTransformer(**{**options, **sizes}), 4)


def test_the_models_gradient_sums_the_memorys_over_the_decoder_blocks(rng):
    model = tiny_model()
    source = np.array([[3, 4, 5, 0, 0], [1, 2, 8, 7, 6]])                     # 0: padding (pad_id)
    target_in = np.array([[0, 1, 2], [0, 4, 3]])
    report = nl.gradcheck(model, (source, target_in))
    assert report.passed
    assert {check.name for check in report.checks} >= {"encoder0.attention.W_q", "decoder1.cross_attention.W_k",
                                                       "source_embedding.W", "source_positions.P"}
    model.forward(source, target_in)
    assert model.backward(rng.normal(size=(2, 3, 5))) == (None, None)       # the ids have no gradient
    # drop decoder0's share of δM (as if the memory's gradient were the last block's alone): the encoder's
    # gradients are wrong then, and gradcheck says so
    block = model.decoder[0]
    backward = block.backward
    block.backward = lambda dZ: (lambda dX, dM, none: (dX, 0 * dM, none))(*backward(dZ))
    failed = nl.gradcheck(model, (source, target_in), raise_on_failure=False)
    wrong = {check.name for check in failed.checks if not check.passed}
    assert "source_embedding.W" in wrong and "encoder0.attention.W_q" in wrong
    assert not any(name.startswith(("decoder", "target", "output")) for name in wrong)


def test_padding_changes_nothing(rng):
    model = tiny_model()
    source = np.array([[3, 4, 5, 0], [1, 2, 8, 7]])
    target_in = np.array([[0, 1, 2], [0, 4, 3]])
    Z = model.forward(source, target_in)
    np.testing.assert_allclose(model.forward(np.pad(source, ((0, 0), (0, 2))), target_in), Z, rtol=1e-12,
                               atol=1e-14)
    assert Z.shape == (2, 3, 5)


def test_saved_and_loaded_whole(tmp_path):
    model = tiny_model()
    source, target_in = np.array([[3, 4, 5, 0]]), np.array([[0, 1, 2, 3]])
    path = nl.save_model(model, tmp_path / "dates.npz")
    loaded = nl.load_model(path)
    assert type(loaded) is dates.Seq2SeqTransformer and loaded.settings() == model.settings()
    assert [type(block).__name__ for block in loaded.encoder + loaded.decoder] == \
        ["EncoderBlock", "DecoderBlock", "DecoderBlock"]
    np.testing.assert_array_equal(loaded.forward(source, target_in), model.eval().forward(source, target_in))


def test_a_short_training_run_beats_chance_clearly():
    sources, targets = dates.generate(3000, rng=0)
    held_sources, held_targets = dates.generate(300, rng=1)
    model = dates.Seq2SeqTransformer(rng=0)
    _, history = dates.train(model, sources, targets, epochs=3, batch_size=64, rng=0, progress=False)
    assert history.loss[-1] < 0.5 < np.log(11)              # nats per character; a uniform guess: log 11
    predicted = dates.translate(model, held_sources)
    characters = np.mean([p == t for pair in zip(predicted, held_targets) for p, t in zip(*pair)])
    assert characters > 0.8                                  # chance: 1 in 11 characters
    assert dates.exact_match(predicted, held_targets) > 0.2   # chance: about none of the 10-character strings
    assert all(re.fullmatch(r"[0-9-]{10}", each) for each in predicted)


def test_translate_and_attention_map_shapes_and_values():
    model = dates.Seq2SeqTransformer(rng=0, heads=2, embed=16)
    texts = ["3 May 1999", "Monday, May 3, 1999", "19990503"]
    out = dates.translate(model, texts, batch_size=2)
    assert len(out) == 3 and all(len(each) == 10 and dates.START not in each for each in out)
    assert out == [dates.translate(model, [text])[0] for text in texts]       # padding in a batch changes nothing
    weights = dates.attention_map(model, texts[1])
    assert weights.shape == (1, 2, 10, len(texts[1]))                         # N×H×T×S
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-6)
    assert (weights >= 0).all()
    assert model.decoder[0].cross_attention.attention_weights is None         # caches cleared after
    assert dates.exact_match(["a", "b"], ["a", "c"]) == 0.5
    with pytest.raises(ValueError, match="2 predictions but 1"):
        dates.exact_match(["a", "b"], ["a"])
