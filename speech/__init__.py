"""The speech stack: G.711, resampling, VAD endpointing, Whisper STT, Piper TTS. Knows nothing of SIP or LLMs."""
