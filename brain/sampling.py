"""Token sampling for the in-process model: llama-cpp-python's sampler chain, with the grammar asked lazily.

llama-cpp-python puts a JSON-schema grammar first in its chain, so for every token the grammar is matched against
all 49,152 candidates: 25-27 ms a token here instead of 18-19 without a grammar. llama.cpp's own sampler
(common/sampling.cpp) samples first and asks the grammar about that one token, matching every candidate only when
it is refused. Greedy decoding gives the same tokens either way (the best token the grammar allows); sampled
decoding draws from the model's distribution and draws again under the grammar when the grammar refuses, as
llama.cpp does.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

# llama_token_data as numpy sees it (int32 id, float logit, float p: 12 bytes, no padding).
_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


class TokenSampler:
    """Samples the next token of a llama-cpp-python ``Llama`` from its last logits (create_completion's defaults:
    top-k 40, top-p 0.95, min-p 0.05, no repetition penalty), honouring ``grammar`` if given."""

    def __init__(self, llm: Any, *, temperature: float, grammar: Any = None) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaSampler

        self._llm = llm
        self._chain = llm._init_sampler(top_k=40, top_p=0.95, min_p=0.05, typical_p=1.0, temp=temperature,
                                        repeat_penalty=1.0)
        self._grammar = None
        if grammar is not None:
            self._grammar = LlamaSampler()
            self._grammar.add_grammar(llm._model, grammar)
        self._one = llama_cpp.llama_token_data()
        self._one_array = llama_cpp.llama_token_data_array(
            data=ctypes.pointer(self._one), size=1, selected=-1, sorted=False)

    def sample(self) -> int:
        import llama_cpp

        token = llama_cpp.llama_sampler_sample(self._chain.sampler, self._llm._ctx.ctx, -1)
        if self._grammar is None:
            return token
        if not self._allowed(token):
            token = self._draw_under_grammar()
        llama_cpp.llama_sampler_accept(self._grammar.sampler, token)
        return token

    def _allowed(self, token: int) -> bool:
        import llama_cpp

        self._one.id, self._one.logit, self._one.p = token, 0.0, 0.0
        self._one_array.size, self._one_array.selected, self._one_array.sorted = 1, -1, False
        llama_cpp.llama_sampler_apply(self._grammar.sampler, ctypes.byref(self._one_array))
        return self._one.logit != float("-inf")

    def _draw_under_grammar(self) -> int:
        import llama_cpp

        n_vocab = self._llm.n_vocab()
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, -1), shape=(n_vocab,))
        data = np.empty(n_vocab, dtype=_TOKEN_DATA)
        data["id"], data["logit"], data["p"] = np.arange(n_vocab, dtype=np.int32), logits, 0.0
        candidates = llama_cpp.llama_token_data_array(
            data=data.ctypes.data_as(llama_cpp.llama_token_data_p), size=n_vocab, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self._grammar.sampler, ctypes.byref(candidates))
        llama_cpp.llama_sampler_apply(self._chain.sampler, ctypes.byref(candidates))
        token = int(candidates.data[candidates.selected].id)
        llama_cpp.llama_sampler_accept(self._chain.sampler, token)  # the chain's own state learns the token kept
        return token
