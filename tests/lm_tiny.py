"""A tiny random-weight Gemma 3 in the engine's own format (CTranslate2, converted by
``lm_weights.hf_to_ct2`` as the real weights are), with a character tokenizer: its
output is noise, but every step of loading and decoding is the real one."""

from __future__ import annotations

from pathlib import Path

from subpipe.translate.gemma import EXAMPLES

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]
# Enough of each script that a random model would write all of them if let.
EXTRA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?()-'\"\n" \
        "人人有权享有生命自由和安全國語說這個中巴经济走廊" "ہر شخص کو اپنی جان آزادی حق ہے۔" "Ωж"


def build(out: Path) -> Path:
    """Write the tiny model to ``out`` (a CTranslate2 folder with tokenizer.json) and return it."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    from subpipe.translate.lm_weights import hf_to_ct2

    chars = sorted(set(EXTRA + "".join(v for e in EXAMPLES for v in e.values())))
    vocab = {token: i for i, token in enumerate(SPECIALS + chars)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>",
                                        unk_token="<unk>", pad_token="<pad>")
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                              max_position_embeddings=2048, sliding_window=2048, pad_token_id=0, eos_token_id=1,
                              bos_token_id=2)
    model = Gemma3ForCausalLM(config).eval()
    hf_to_ct2(model, tokenizer, out)
    return out
