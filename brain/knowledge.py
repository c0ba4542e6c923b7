"""Answering from the company's documents, sentence by sentence.

Whole passages are too coarse to tell "the documents answer this" from "the documents talk about
something close" (measured: top passage similarity overlapped for answerable and unanswerable
questions). Sentences are sharp enough when two signals agree: meaning (MiniLM cosine) and coverage
(most of the question's content words, stemmed, appear in the sentence). In a FAQ the matching
sentence is often the question itself: the answer is the sentence after it.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np
import snowballstemmer

from memory.records import COMPANY_OWNER
from memory.service import MemoryService
from speech.sentences import split_sentences

MIN_SIMILARITY = 0.45
MIN_COVERAGE = 0.5
FULL_COVERAGE_SIMILARITY = 0.3
_STOP = set(
    "the a an to is and of i my me for in on at it you your do does did what whats how much many is are can we our "
    "with from who whos where wheres when which any there have has be this that will would could should about get "
    "need want hi hello please roughly if or by tell know like".split()
    # words for the business itself: "your practice", "the company" name no fact
    + "practice company office business shop clinic firm place here".split()
)
_STEMMER = snowballstemmer.stemmer("english")
_WORD = re.compile(r"[a-z0-9]+")


def content_stems(text: str) -> set[str]:
    words = [w for w in _WORD.findall(text.lower().replace("'s", "")) if w not in _STOP and len(w) > 2]
    stems = set(_STEMMER.stemWords(words))
    # Snowball keeps agent nouns whole ("owner" vs "own"): let both meet.
    return stems | {s[:-2] for s in stems if s.endswith("er") and len(s) > 4}


@dataclass(frozen=True)
class Answer:
    text: str
    similarity: float
    coverage: float
    source: str


class KnowledgeIndex:
    """Every sentence of the company documents, embedded once; rebuilt when the documents change."""

    def __init__(self, service: MemoryService) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._version: int | None = None
        self._sentences: list[tuple[str, str, str]] = []  # (sentence, answer, source)
        self._matrix = np.zeros((0, 1), dtype=np.float32)
        self._stems: list[set[str]] = []

    def _refresh(self) -> None:
        version = self.service.store.count("passages")
        if version == self._version:
            return
        sentences: list[tuple[str, str, str]] = []
        for passage in self.service.store.passages(COMPANY_OWNER):
            for paragraph in re.split(r"\n\s*\n", passage.text):
                paragraph = " ".join(paragraph.split())
                if not paragraph or paragraph.startswith("#"):
                    continue
                pieces = [s.strip() for s in split_sentences(paragraph) if len(s.split()) >= 3]
                for index, sentence in enumerate(pieces):
                    is_question = sentence.endswith("?") and index + 1 < len(pieces)
                    answer = pieces[index + 1] if is_question else sentence
                    sentences.append((sentence, answer, passage.source))
        self._sentences = sentences
        self._stems = [content_stems(s + " " + a) for s, a, _ in sentences]
        self._matrix = self.service.embedder.embed([s for s, _, _ in sentences]) if sentences else self._matrix
        self._version = version

    def answer(self, question: str, candidates: int = 5) -> Answer | None:
        """The best-supported answer sentence, or None when the documents do not answer the question.

        Candidates: the nearest sentences by meaning and the sentences covering most of the question's
        words. Accepted when meaning and coverage agree, or when every content word of the question is
        covered and the meaning is at least related.
        """
        with self._lock:
            self._refresh()
            if not self._sentences:
                return None
            scores = self._matrix @ self.service.embedder.embed_one(question)
            wanted = content_stems(question)
            coverages = np.array([len(wanted & stems) / max(1, len(wanted)) for stems in self._stems])
            pool = set(np.argsort(-scores)[:candidates].tolist()) | set(np.argsort(-coverages)[:candidates].tolist())
            best: tuple[float, Answer] | None = None
            for i in pool:
                sentence, answer, source = self._sentences[i]
                rank = float(scores[i]) + 0.3 * float(coverages[i])
                if best is None or rank > best[0]:
                    text = re.sub(r"^[A-Z][\w ]{2,20}:\s+", "", answer)
                    best = (rank, Answer(text, float(scores[i]), float(coverages[i]), source))
        if best is None:
            return None
        found = best[1]
        agree = found.similarity >= MIN_SIMILARITY and found.coverage >= MIN_COVERAGE
        fully_covered = found.coverage >= 0.99 and found.similarity >= FULL_COVERAGE_SIMILARITY
        return found if agree or fully_covered else None
