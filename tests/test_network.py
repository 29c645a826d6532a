"""The network's forward: prompts share the encoder and the skip half of the decoder, in either memory layout."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from model_fixtures import TINY, random_model
from VoxTellCore.model import VoxTellModel
from VoxTellCore.model.config import VoxTellConfig
from VoxTellCore.model.image_decoder import _project

CHANNELS_LAST = torch.channels_last_3d


@pytest.fixture(scope="module")
def model_and_inputs():
    model = random_model(TINY, deep_supervision=True).eval()  # eval: the prompt decoder's dropout would differ
    image = torch.randn(2, 1, *TINY.patch_size)
    prompts = torch.randn(2, 3, TINY.text_embedding_dim)
    return model, image, prompts


def test_several_prompts_give_each_prompt_its_own_forward(model_and_inputs):
    model, image, prompts = model_and_inputs
    with torch.no_grad():
        together = model(image, prompts)
        alone = [model(image, prompts[:, n : n + 1]) for n in range(prompts.shape[1])]
    assert len(together) == 5
    for scale, logits in enumerate(together):
        assert logits.shape[1] == 3
        expected = torch.cat([single[scale] for single in alone], dim=1)
        torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def flops(function, *args) -> tuple[int, object]:
    with FlopCounterMode(display=False) as counter:
        result = function(*args)
    return counter.get_total_flops(), result


def test_a_kept_window_decodes_a_new_prompt_at_a_fifth_of_its_first_prompts_work():
    """Counted on the released sizes (shapes only, on the meta device): a window's features keep
    the skip half of the decoder's convolutions, so a new prompt costs ~0.20 of the first, where
    keeping the encoder's skips alone left ~0.35 (the release's decoder after a kept encoder)."""
    with torch.device("meta"), torch.inference_mode():
        model = VoxTellModel(VoxTellConfig()).eval()
        image = torch.empty(1, 1, *model.config.patch_size)
        text = torch.empty(1, 1, model.config.text_embedding_dim)
        encoder, skips = flops(model.encode, image)
        skip_half, features = flops(model._window_features, skips)
        embed, embeddings = flops(model.mask_embeddings, features.memory, text)
        prompt, _ = flops(model.decode_prompt, features, embeddings, 0)
        whole_decoder, _ = flops(model.decoder, skips, embeddings)
    first, later = encoder + skip_half + embed + prompt, embed + prompt
    assert prompt + skip_half == whole_decoder  # the same convolutions, split
    assert later / first <= 0.21 and (embed + whole_decoder) / first >= 0.34


def test_channels_last_gives_the_same_logits_and_gradients(model_and_inputs):
    model, image, prompts = model_and_inputs

    def run(memory_format):
        net = VoxTellModel(TINY, deep_supervision=True)
        net.load_state_dict(model.state_dict())
        net = net.to(memory_format=memory_format).eval()
        outputs = net(image.contiguous(memory_format=memory_format), prompts)
        sum(o.square().mean() for o in outputs).backward()
        return outputs, {k: p.grad for k, p in net.named_parameters() if p.grad is not None}

    outputs_first, grads_first = run(torch.contiguous_format)
    outputs_last, grads_last = run(CHANNELS_LAST)
    for a, b in zip(outputs_first, outputs_last):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    assert grads_first.keys() == grads_last.keys()
    for name in grads_first:
        torch.testing.assert_close(grads_last[name], grads_first[name], rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, CHANNELS_LAST])
def test_projection_onto_prompt_vectors_matches_the_einsum_and_keeps_the_layout(memory_format):
    torch.manual_seed(1)
    x = torch.randn(2, 6, 5, 4, 3).contiguous(memory_format=memory_format).requires_grad_(True)
    vectors = torch.randn(2, 3, 6)
    maps = _project(x, vectors)
    torch.testing.assert_close(maps, torch.einsum("bchwd,bnc->bnhwd", x, vectors))
    assert maps.is_contiguous(memory_format=memory_format)
    maps.sum().backward()
    assert x.grad.is_contiguous(memory_format=memory_format)
