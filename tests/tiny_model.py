"""A tiny random causal LM with a real chat template, built locally: tests download nothing.

The tokenizer is a byte-level BPE trained in memory on a few sentences, so any text encodes;
the model is a 2-layer Llama with hidden size 32 and grouped-query attention, enough to
exercise every code path of the engine in well under a second per test.
"""

from __future__ import annotations

from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "Thanks, that is exactly what I needed.",
    "That's not what I asked. Can you answer the question?",
    "What is the capital of France? Paris is the capital of France.",
    "Could you explain that in simpler words, please?",
    "The weather today is sunny with a light breeze.",
    "Write a short poem about the sea and the sky.",
]


def build_tiny_model(folder: Path, *, chat_template: bool = True, seed: int = 0) -> Path:
    """Write a tokenizer and a randomly initialised Llama model into `folder`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
        pad_token="<|endoftext|>", unk_token="<|endoftext|>",
    )
    if chat_template:
        fast.chat_template = CHATML_TEMPLATE
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(folder)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    # Larger random weights than the default init so that scores differ clearly between inputs.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    model.save_pretrained(folder)
    return folder


def build_tiny_adapter(base: Path, folder: Path, *, seed: int = 1) -> Path:
    """A LoRA adapter folder for the tiny model at `base`, laid out as `flr finetune` writes one
    (PEFT files, tokenizer, `flr-adapter.json` naming the base), made with PEFT directly in well
    under a second. Its B matrices are random (PEFT starts them at zero, which would make the
    adapter a no-op), so its scores differ from the base model's."""
    import json

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.training.finetune import ADAPTER_FILE

    model = AutoModelForCausalLM.from_pretrained(base)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                            task_type="CAUSAL_LM"))
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.2)
    folder.mkdir(parents=True, exist_ok=True)
    peft.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    (folder / ADAPTER_FILE).write_text(json.dumps({"base_model": str(base.resolve())}) + "\n")
    return folder
