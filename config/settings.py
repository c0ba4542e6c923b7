"""Typed settings of the whole service, one section per concern.

Every key has a default that works offline with the models shipped in PyPI packages, so an empty
(or absent) ``employai.toml`` gives a working service. Unknown keys are errors: a typo in a
telephony config must fail at start, not silently fall back to a default in the middle of a call.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "employai"


class Section(BaseModel):
    """Base of every config section: strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServiceSettings(Section):
    """Where the service keeps its state, and how loudly it logs."""

    data_dir: Path = Field(default_factory=_default_data_dir, description="State: models cache, database, recordings.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_address: str | None = Field(
        "127.0.0.1:9464", pattern=r"^[\w.\-\[\]:]*:\d{1,5}$",
        description="host:port of the Prometheus endpoint (/metrics); empty or none = off. Port 0 = any free port.")

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()


class STTSettings(Section):
    """Speech-to-text with faster-whisper.

    ``model`` is a packaged model name (``whisper-base``, ``whisper-tiny.en``) or a path to a
    CTranslate2 Whisper directory (e.g. whisper small on a GPU).
    """

    model: str = "whisper-base"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = Field("auto", description="auto = int8 on CPU, float16 on CUDA; or any CTranslate2 type.")
    cpu_threads: int = Field(
        1, ge=1, le=256,
        description="Whisper's threads on CPU. One here: on 2 cores the model's two contexts and Piper need the other "
        "core (bench_call, 3 runs each: 1 call 785-798 ms p50 against a median of 834 with 2 threads; 2 calls p95 "
        "1316-1372 against a median of ~1470).",
    )
    workers: int = Field(
        2, ge=1, le=64,
        description="Transcriptions run at once (each on cpu_threads threads; CTranslate2 keeps a model replica per "
        "worker, ~100 MB for base). Two: a caller's speculative transcript no longer waits behind another's, or behind "
        "a partial transcript that was already running when the pause began.",
    )
    language: str = Field("en", min_length=2, max_length=8)
    beam_size: int = Field(1, ge=1, le=10)
    encoder_window: Literal["adaptive", "full"] = Field(
        "adaptive",
        description="adaptive: encode only as many seconds as the utterance needs (fast); "
        "full: Whisper's fixed 30 s window (slow, the reference behaviour).",
    )
    partial_interval_ms: int = Field(
        700, ge=100, le=10_000, description="While the caller speaks, re-transcribe at most this often."
    )


class VADSettings(Section):
    """webrtcvad endpointing. Times are in milliseconds of audio.

    A candidate becomes *speech* after ``start_ms`` of voiced frames, is *confirmed* (real speech, fit
    to barge in) after ``confirm_ms`` voiced, and *ends* after ``hangover_ms`` of silence. Anything
    that ends before confirmation (a cough, a click, a short "mhm") is reported as a blip.
    """

    aggressiveness: int = Field(2, ge=0, le=3)
    frame_ms: Literal[10, 20, 30] = 20
    start_ms: int = Field(60, ge=10, le=2000)
    confirm_ms: int = Field(300, ge=10, le=5000)
    hangover_ms: int = Field(500, ge=60, le=5000)
    early_hangover_ms: int = Field(
        240, ge=0, le=5000,
        description="End the turn after this much silence when the speculative transcript is a complete "
        "sentence (not a number being read out); 0 = always wait the full hang-over.",
    )
    number_hangover_ms: int = Field(
        1000, ge=0, le=5000,
        description="End the turn only after this much silence when the speculative transcript ends with a number "
        "(\"one\", \"555\"): people pause between the digits they read out, longer than the hang-over; 0 = the "
        "normal hang-over.",
    )
    pause_ms: int = Field(
        60, ge=20, le=5000,
        description="Silence after which the final transcription starts speculatively (reused when the pause "
        "becomes the end of the turn; wasted when the caller goes on). 60 rather than 120: the transcript is the same "
        "(the audio ends at the last voiced frame either way) and ready 60 ms sooner; three runs each, the endpoint "
        "was earlier on 6 of the 7 caller turns (by ~25 ms on average, 80 on short ones), for ~2 more speculative "
        "transcriptions per utterance, which run on the second STT worker (stt.workers) and block no one.",
    )
    preroll_ms: int = Field(200, ge=0, le=2000)
    min_energy_dbfs: float = Field(-50.0, ge=-96.0, le=0.0, description="Frames quieter than this are never speech.")
    max_utterance_s: float = Field(28.0, gt=1.0, le=600.0)

    @model_validator(mode="after")
    def _ordered(self) -> "VADSettings":
        if self.confirm_ms < self.start_ms:
            raise ValueError(f"confirm_ms ({self.confirm_ms}) must be >= start_ms ({self.start_ms})")
        return self


class TTSSettings(Section):
    """Piper text-to-speech. ``voice`` is ``joe`` (packaged) or a path to a Piper ``.onnx`` voice."""

    voice: str = "joe"
    length_scale: float = Field(1.0, gt=0.2, le=4.0, description="Speaking rate: below 1 is faster.")
    speaker_id: int | None = None
    volume: float = Field(0.6, gt=0.0, le=1.0, description="Peak level of each sentence (1.0 = full scale).")
    noise_scale: float | None = Field(None, ge=0.0, le=2.0, description="Voice variation; None = the voice's own; 0 = the same audio every time.")
    noise_w_scale: float | None = Field(None, ge=0.0, le=2.0, description="Rhythm variation; None = the voice's own.")
    line_rate: int = Field(8000, description="Sample rate of the audio sent to the line.")
    use_cuda: bool = False
    cpu_threads: int = Field(
        2, ge=0, le=256,
        description="ONNX Runtime's threads for one synthesis on the CPU (0 = its default, one per core). Its threads "
        "never spin-wait between operators: spinning threads took the cores from the model's decoding beside it "
        "(a first piece 320 ms instead of 238 beside a decoding context, 124 vs 134 ms alone).",
    )


class LLMSettings(Section):
    """The employee's language model: in-process llama.cpp, or an OpenAI-compatible server."""

    backend: Literal["llama_cpp", "openai"] = "llama_cpp"
    model: str = Field("smollm2-135m", description="Packaged model name or a path to a GGUF file.")
    n_ctx: int = Field(4096, ge=256, le=1_048_576)
    n_threads: int = Field(
        1, ge=1, le=256,
        description="Threads generating tokens. One is the fastest in a call on 2 cores: the voice loop's other "
        "threads wake on every token, and a descheduled OpenMP worker stalls a two-thread decode (measured 11.7 ms "
        "a token with 1 thread, 16-18 ms with 2).",
    )
    n_threads_batch: int | None = Field(
        2, ge=1, le=256,
        description="Threads evaluating the prompt (a batch: these do scale, 2 cut a turn's prompt evaluation from "
        "~8 to ~5 ms a token here); None = n_threads.",
    )
    n_gpu_layers: int = Field(0, ge=-1)
    flash_attn: Literal["auto", "on", "off"] = Field(
        "auto",
        description="auto: on when layers are on a GPU, off on the CPU. Why: without it llama.cpp keeps the V cache "
        "transposed, and a saved prefix or conversation state is copied back into GPU memory row by row (on a lent "
        "H200, restoring a 139-token prefix took ~40 ms, evaluating the whole 157-token prompt 9 ms). On the CPU "
        "those copies are memcpys (2 ms for 600 tokens) and flash attention measured no faster here, so the CPU "
        "keeps the numerics the conversation evaluation was measured with.",
    )
    parallel: int = Field(
        2, ge=1, le=64,
        description="In-process model: requests decoding at once, each in its own llama.cpp context (its KV cache "
        "and buffers: ~110 MB more per context with the packaged model; the weights' file is mapped, shared). With "
        "one, a second call's turn waits for the first call's whole reply (measured here: two replies of 60 tokens "
        "took 1.6 s one after the other, 0.97 s side by side on 2 cores).",
    )
    base_url: str | None = Field(None, description="For backend = openai, e.g. http://127.0.0.1:8000/v1")
    api_key: SecretStr | None = Field(None, description="Secret: set EMPLOYAI_LLM__API_KEY instead of the file.")
    model_tools: Literal["lookup", "all"] = Field(
        "lookup",
        description="lookup: the model may only search (knowledge, past calls, notes) and use custom tools; taking "
        "messages, transfers, hang-ups, callbacks, DTMF and memory edits happen only through the dialogue flows "
        "that confirmed the caller asked for them (right for small models). all: the model may call every tool.")

    @model_validator(mode="after")
    def _server_needs_url(self) -> "LLMSettings":
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend = 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)")
        return self


class TransferTarget(Section):
    """Someone the employee may put a caller through to."""

    target: str = Field(description="Extension, number or SIP URI the call is transferred to.")
    description: str = ""


class StaffMember(Section):
    """One person of the staff directory: who callers may ask for, by name, role or department."""

    name: str
    role: str = ""
    department: str = ""
    extension: str = ""
    transfer: str = Field("", description="The key of the [job.transfers] entry that reaches this person; "
                                          "empty: callers may leave a message but are not put through.")


class JobSettings(Section):
    """The employee's job: who it is, for whom it works, what it may do. Configuration, not code."""

    name: str = "Ava"
    company: str = "Northwind Dental"
    role: str = "receptionist"
    duties: list[str] = Field(
        default_factory=lambda: [
            "answer questions about the company from its documents",
            "take messages for staff",
            "transfer callers to the right person",
        ]
    )
    tone: str = "warm, brief and professional"
    greeting: str = "Thank you for calling {company}, this is {name}. How can I help you?"
    transfers: dict[str, TransferTarget] = Field(
        default_factory=lambda: {"front desk": TransferTarget(target="2001", description="appointments and general questions")}
    )
    business_hours: dict[str, str] = Field(
        default_factory=lambda: {d: "08:00-17:00" for d in ("monday", "tuesday", "wednesday", "thursday", "friday")},
        description="day -> HH:MM-HH:MM; days not listed are closed.",
    )
    hours_exceptions: list[str] = Field(
        default_factory=list,
        description='Exceptions to business_hours, one sentence each, e.g. "Closed 24-26 December." or '
        '"Saturdays: the first and third Saturday of the month only." (the documents may state more).')
    staff: list[StaffMember] = Field(default_factory=list, description="The staff directory (optional: names in "
                                     "the documents are found too).")
    timezone: str = "UTC"
    secrets: list[SecretStr] = Field(
        default_factory=list, description="Codes, passwords, private numbers: never spoken, never shown to the model."
    )
    internal_notes: SecretStr | None = Field(None, description="Staff-only notes: never spoken, never shown to the model.")
    answer_mode: Literal["extractive", "generative"] = Field(
        "extractive",
        description="extractive: questions about the company are answered with the best-matching sentences of its "
        "documents (no invention possible; right for small models); generative: the model phrases the answer "
        "from the retrieved passages, checked by the fact guard.",
    )
    custom_tools: list[str] = Field(default_factory=list, description="module:function names of extra tools.")

    @field_validator("business_hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, str]) -> dict[str, str]:
        days = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
        for day, span in value.items():
            if day.lower() not in days:
                raise ValueError(f"{day!r} is not a day of the week")
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", span):
                raise ValueError(f"{day}: {span!r} is not HH:MM-HH:MM")
        return {d.lower(): s for d, s in value.items()}

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a time zone name (e.g. Europe/Berlin, America/Chicago)") from exc
        return value

    @model_validator(mode="after")
    def _staff_transfers_exist(self) -> "JobSettings":
        for person in self.staff:
            if person.transfer and person.transfer not in self.transfers:
                raise ValueError(f"staff {person.name!r}: transfer {person.transfer!r} is not a key of [job.transfers]")
        return self

    @field_validator("custom_tools")
    @classmethod
    def _valid_tool_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[\w.]+:\w+", name):
                raise ValueError(f"{name!r} is not module:function")
        return value


class SIPSettings(Section):
    """The phone line. Without ``registrar`` the endpoint takes direct calls (no PBX needed).

    ``host`` is both the address bound and the one written in SDP/Contact: on a LAN, set it to
    this machine's address so that a softphone or PBX can reach it (``0.0.0.0`` cannot be advertised).
    """

    host: str = Field("127.0.0.1", description="Address to listen on and advertise (an IP of this machine).")
    port: int = Field(5070, ge=1, le=65535, description="SIP UDP port. Call sip:<user>@<host>:<port>.")
    user: str = Field("employai", min_length=1, description="Extension / user part the endpoint answers as.")
    registrar: str | None = Field(None, description="host[:port] of a PBX to register with; none = direct calls only.")
    auth_user: str | None = Field(None, description="Digest user name if it differs from `user`.")
    password: SecretStr | None = Field(None, description="Secret: set EMPLOYAI_SIP__PASSWORD instead of the file.")
    register_expires: int = Field(300, ge=30, le=86_400, description="Seconds asked for in REGISTER; refreshed early.")
    rtp_port_low: int = Field(20000, ge=1024, le=65535)
    rtp_port_high: int = Field(20999, ge=1024, le=65535)
    max_calls: int = Field(4, ge=1, le=500, description="Simultaneous calls; one more is answered 486 Busy Here.")
    codecs: list[Literal["PCMU", "PCMA"]] = Field(default_factory=lambda: ["PCMU", "PCMA"], min_length=1,
                                                   description="Offered/accepted in this order of preference.")
    answer_delay_ms: int = Field(0, ge=0, le=60_000, description="Ring this long before answering an inbound call.")
    ring_timeout_s: float = Field(30.0, gt=0, le=600, description="Outbound: give up (CANCEL) after this long unanswered.")
    transfer_timeout_s: float = Field(20.0, gt=0, le=300, description="Blind transfer: wait this long for the NOTIFY result.")

    @property
    def address(self) -> str:
        """The URI to dial to reach the employee directly."""
        return f"sip:{self.user}@{self.host}:{self.port}"

    @model_validator(mode="after")
    def _port_range(self) -> "SIPSettings":
        if self.rtp_port_low >= self.rtp_port_high:
            raise ValueError("rtp_port_low must be below rtp_port_high")
        if self.host in ("0.0.0.0", "::"):
            raise ValueError("host must be an address of this machine that peers can reach, not a wildcard")
        return self


class CallSettings(Section):
    """How a call is conducted, whatever the line: barge-in, silence, limits."""

    barge_in: bool = Field(True, description="The caller may interrupt the agent (confirmed speech only, not a cough).")
    silence_reprompt_s: float = Field(10.0, gt=1, le=600, description="Caller silent this long: ask if they are there.")
    silence_hangup_s: float = Field(10.0, gt=1, le=600, description="Still silent this long after the re-prompt: say goodbye, hang up.")
    reprompt: str = "Are you still there?"
    silence_goodbye: str = "I can't hear anything, so I'll end the call now. Please call back any time. Goodbye."
    max_call_s: float = Field(1800.0, gt=5, le=86_400, description="Hard limit on one call's length.")
    media_timeout_s: float = Field(60.0, gt=1, le=3600, description="No RTP from the caller this long: the line is dead, end the call.")
    max_call_goodbye: str = "I'm sorry, we have reached the time limit for this call. Please call back if you need more help. Goodbye."
    recordings: bool = Field(True, description="Record every call (stereo WAV: caller left, agent right).")


class ConsoleSettings(Section):
    """The operator console: a local web page served by ``employai serve``."""

    enabled: bool = True
    address: str = Field("127.0.0.1:8765", pattern=r"^[\w.\-\[\]:]*:\d{1,5}$",
                         description="host:port of the console; loopback by default. Port 0 = any free port.")
    password: SecretStr | None = Field(
        None, description="Operators' password; none = the console serves only its login page (set it with "
        "EMPLOYAI_CONSOLE__PASSWORD). There is no default password.")
    session_hours: float = Field(12.0, gt=0, le=24 * 30, description="How long a login lasts.")


class CampaignSettings(Section):
    """Outbound campaigns: the defaults of ``employai campaign run`` and answering-machine detection."""

    concurrency: int = Field(3, ge=1, le=64, description="Simultaneous calls of one campaign.")
    hours: str = Field("09:00-18:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$",
                       description="Calling hours, HH:MM-HH:MM in the campaign's time zone; no call starts outside.")
    timezone: str | None = Field(None, description="IANA zone of the calling hours; default: [job] timezone.")
    retries: int = Field(2, ge=0, le=20, description="Extra attempts for busy / no-answer / failed calls.")
    retry_after_s: float = Field(1800.0, ge=0, le=7 * 86_400, description="Wait before a retry.")
    answering_machine_detection: bool = True
    amd_greeting_ms: int = Field(2500, ge=500, le=10_000, description="A greeting longer than this is a machine.")
    amd_after_greeting_silence_ms: int = Field(800, ge=200, le=5000, description="Silence after a short greeting: a person.")
    amd_initial_silence_ms: int = Field(3000, ge=500, le=15_000, description="Nobody speaks this long after answer: treat as a person.")
    beep_wait_s: float = Field(20.0, ge=1, le=120, description="Longest wait for the beep before leaving the message anyway.")
    voicemail_silence_ms: int = Field(2500, ge=500, le=10_000, description="No beep: speak after the greeting has been quiet this long.")


class MemorySettings(Section):
    """MemGPT-style memory: where it is stored and how big the in-prompt blocks may grow."""

    store: Literal["sqlite", "postgresql"] = Field(
        "sqlite", description="sqlite: one file, one worker; postgresql: + pgvector, shared by several workers.")
    path: Path | None = Field(None, description="SQLite file; default <data_dir>/memory.sqlite3")
    url: SecretStr | None = Field(
        None, description="PostgreSQL URL for store = postgresql (postgresql://user:password@host/db); "
        "set it with EMPLOYAI_MEMORY__URL to keep the password out of the file.")
    embedding_model: str = Field("minilm-l6-v2", description="Packaged embedding model or a folder with model.onnx + tokenizer.json.")
    persona_limit: int = Field(2000, ge=100, le=20_000, description="Characters of the persona block.")
    human_limit: int = Field(2000, ge=100, le=20_000, description="Characters of each caller's block.")

    @field_validator("path")
    @classmethod
    def _expand_path(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value else value

    @model_validator(mode="after")
    def _postgresql_needs_url(self) -> "MemorySettings":
        if self.store == "postgresql" and not (self.url and self.url.get_secret_value().strip()):
            raise ValueError("store = 'postgresql' needs url (postgresql://user:password@host/db; "
                             "EMPLOYAI_MEMORY__URL keeps the password out of the file)")
        return self


ENV_PREFIX = "EMPLOYAI_"
ENV_NESTED_DELIMITER = "__"


class Settings(BaseSettings):
    """The whole effective configuration: the TOML file's values, overridden by ``EMPLOYAI_…`` variables.

    ``EMPLOYAI_LLM__API_KEY=…`` sets ``[llm] api_key``: secrets stay out of the file.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        validate_assignment=True,
    )

    service: ServiceSettings = Field(default_factory=ServiceSettings)
    stt: STTSettings = Field(default_factory=STTSettings)
    vad: VADSettings = Field(default_factory=VADSettings)
    tts: TTSSettings = Field(default_factory=TTSSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    job: JobSettings = Field(default_factory=JobSettings)
    sip: SIPSettings = Field(default_factory=SIPSettings)
    call: CallSettings = Field(default_factory=CallSettings)
    campaign: CampaignSettings = Field(default_factory=CampaignSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @property
    def memory_path(self) -> Path:
        return self.memory.path or self.service.data_dir / "memory.sqlite3"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init kwargs (see config.loader); the environment wins over them.
        return (env_settings, init_settings)
