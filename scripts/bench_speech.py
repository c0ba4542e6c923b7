#!/usr/bin/env python3
"""Speech benchmark: STT speed, endpoint-to-final-text latency, WER through G.711, TTS first audio.

Prints one JSON object (with --json) or a short table. All audio is the recorded human speech of
../shared/audio (see its manifest), passed through the 8 kHz µ-law telephone path.

    .venv/bin/python scripts/bench_speech.py --json [--repeats 3] [--models whisper-base,whisper-tiny.en]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from config import Settings  # noqa: E402
from speech.audio import LINE_RATE, STT_RATE, read_audio  # noqa: E402
from speech.listener import FinalText, TranscriptionWorker, transcribe_stream  # noqa: E402
from speech.resample import resample, telephone_path  # noqa: E402
from speech.scoring import word_error_rate  # noqa: E402
from speech.stt import WhisperSTT  # noqa: E402

TTS_TEXTS = [
    "Thanks for calling Northwind Dental, this is Ava. How can I help you today?",
    "Sure, I can take a message for Doctor Patel. What's the best number to reach you?",
    "We're open Monday to Friday from 8:30 AM to 5 PM, and Saturdays until noon.",
    "Your appointment is confirmed for Tuesday at 10:15. Is there anything else?",
    "I'm sorry, I don't have that information, but I can put you through to the front desk.",
    "The cleaning costs $95, and most insurance plans cover it in full.",
]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summary(values: list[float], digits: int = 3) -> dict[str, float]:
    return {"p50": round(pct(values, 50), digits), "p95": round(pct(values, 95), digits), "n": len(values)}


def machine() -> dict[str, object]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def load_recordings(audio_dir: Path) -> list[tuple[str, str, np.ndarray]]:
    with (audio_dir / "manifest.tsv").open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    out = []
    for row in rows:
        clip = read_audio(audio_dir / row["filename"])
        out.append((row["filename"], row["transcript"], resample(clip.samples, clip.rate, STT_RATE)))
    return out


def bench_stt(spec: str, settings: Settings, recordings, repeats: int) -> dict[str, object]:
    """``spec`` is a model name, optionally ``:full`` for Whisper's fixed 30 s window (the baseline)."""
    model, _, window = spec.partition(":")
    update = {"model": model, "encoder_window": window or settings.stt.encoder_window}
    stt = WhisperSTT.from_settings(settings.stt.model_copy(update=update), settings.service.data_dir / "models")
    stt.transcribe(telephone_path(recordings[0][2], STT_RATE))  # warm-up
    rtf, compute, hyps = [], [], []
    for _name, _ref, audio in recordings:
        phoned = telephone_path(audio, STT_RATE)
        for attempt in range(repeats):
            result = stt.transcribe(phoned)
            rtf.append(result.real_time_factor)
            compute.append(result.compute_seconds * 1000)
            if attempt == 0:
                hyps.append(result.text)
    wer = word_error_rate([r[1] for r in recordings], hyps)
    return {
        "device": f"{stt.device}/{stt.compute_type}",
        "encoder_window": stt.encoder_window,
        "real_time_factor": summary(rtf),
        "transcribe_ms": summary(compute, 1),
        "wer_telephone": round(wer.wer, 4),
        "wer_words": wer.words,
        "wer_errors": wer.errors,
    }


def bench_streaming(settings: Settings, recordings, stt: WhisperSTT) -> dict[str, object]:
    """Feed each recording at real time, as 20 ms line frames; time from endpoint to final text."""
    worker = TranscriptionWorker(stt)
    waits, speech_end_to_text, speculative = [], [], 0
    hangover = settings.vad.hangover_ms
    try:
        for _name, _ref, audio in recordings:
            line = telephone_path(resample(audio, STT_RATE, LINE_RATE), LINE_RATE)
            line = np.concatenate([np.zeros(LINE_RATE // 2, np.int16), line, np.zeros(LINE_RATE, np.int16)])
            events = transcribe_stream(worker, line, LINE_RATE, settings.vad, realtime=True,
                                       partial_interval_ms=settings.stt.partial_interval_ms)
            for event in events:
                if isinstance(event, FinalText):
                    waits.append(event.final_wait_s * 1000)
                    speech_end_to_text.append(hangover + event.final_wait_s * 1000)
                    speculative += event.speculative
    finally:
        worker.close()
    return {
        "endpoint_to_final_ms": summary(waits, 1),
        "speech_end_to_final_ms": summary(speech_end_to_text, 1),
        "hangover_ms": hangover,
        "utterances": len(waits),
        "speculative_hits": speculative,
    }


def bench_tts(settings: Settings, repeats: int) -> dict[str, object]:
    from speech.tts import PiperTTS  # here, so an STT-only run (--skip-tts) needs no Piper install

    tts = PiperTTS.from_settings(settings.tts)
    tts.warm_up()
    first, rtf = [], []
    for _ in range(repeats):
        for text in TTS_TEXTS:
            started = time.perf_counter()
            total_audio = 0.0
            for index, chunk in enumerate(tts.stream(text, rate=settings.tts.line_rate)):
                if index == 0:
                    first.append((time.perf_counter() - started) * 1000)
                total_audio += chunk.seconds
            rtf.append((time.perf_counter() - started) / total_audio)
    return {"voice": settings.tts.voice, "first_audio_ms": summary(first, 1), "real_time_factor": summary(rtf)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="whisper-base,whisper-base:full,whisper-tiny.en,whisper-tiny.en:full",
                        help="STT models for RTF/WER; NAME:full = the fixed 30 s encoder window (baseline)")
    parser.add_argument("--audio", type=Path, default=Path(os.environ.get("EMPLOYAI_TEST_AUDIO", REPO.parent / "shared" / "audio")))
    parser.add_argument("--skip-streaming", action="store_true", help="skip the real-time streaming pass (~2.5 min)")
    parser.add_argument("--skip-tts", action="store_true", help="skip the Piper pass (e.g. on a GPU box without the voice)")
    args = parser.parse_args()

    settings = Settings()
    recordings = load_recordings(args.audio)
    started = time.time()
    result: dict[str, object] = {"machine": machine(), "recordings": len(recordings),
                                 "audio_seconds": round(sum(len(r[2]) for r in recordings) / STT_RATE, 2)}
    result["stt"] = {m: bench_stt(m, settings, recordings, args.repeats) for m in args.models.split(",")}
    if not args.skip_streaming:
        stt = WhisperSTT.from_settings(settings.stt, settings.service.data_dir / "models")
        result["streaming"] = {"model": settings.stt.model, **bench_streaming(settings, recordings, stt)}
    if not args.skip_tts:
        result["tts"] = bench_tts(settings, args.repeats)
    result["bench_seconds"] = round(time.time() - started, 1)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
