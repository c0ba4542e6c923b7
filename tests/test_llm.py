"""LLM backends on the real packaged SmolLM2: streaming, prefix cache, JSON-schema output, cancel,
and the same interface over a real OpenAI-compatible server (python -m llama_cpp.server)."""

import json
import os
import socket
from contextlib import contextmanager

import pytest

from brain.llm import ChatMessage, CompletionRequest, LlamaCppBackend, OpenAICompatBackend, load_backend
from config.settings import LLMSettings

SYSTEM = ChatMessage(
    "system",
    "You are Ava, the receptionist of Northwind Dental in Springfield. Answer in one short sentence. "
    "Opening hours: Monday to Friday, 8 to 5. Staff: Dr. Patel (dentist), Sam (front desk).",
)


# 0 here and in CI; scripts/dev/gpu_llm_check.sh runs this file with every layer on a lent GPU (-1), where
# the KV caches, and so the saved and restored sequence states, live in GPU memory.
GPU_LAYERS = int(os.environ.get("EMPLOYAI_TEST_GPU_LAYERS", "0"))


def _local(**kwargs) -> LlamaCppBackend:
    return LlamaCppBackend.from_settings(LLMSettings(n_ctx=2048, n_gpu_layers=GPU_LAYERS, **kwargs))


@pytest.fixture(scope="module")
def llm() -> LlamaCppBackend:
    return _local()


def _ask(text: str, **kwargs) -> CompletionRequest:
    return CompletionRequest([SYSTEM, ChatMessage("user", text)], **kwargs)


def test_streams_text_deltas(llm):
    stream = llm.stream(_ask("Hello, who am I speaking to?", max_tokens=40, temperature=0.0))
    deltas = list(stream)
    assert len(deltas) > 3 and "".join(deltas) == stream.text and stream.text.strip()
    assert stream.stats.completion_tokens == len(deltas)
    assert stream.stats.first_token_s is not None and stream.stats.total_s >= stream.stats.first_token_s
    assert stream.stats.finish_reason in {"stop", "length"}
    assert "<|im_end|>" not in stream.text and "<|im_start|>" not in stream.text  # template stop applied


def test_chat_template_comes_from_the_gguf(llm):
    prompt, stop = llm.render([SYSTEM, ChatMessage("user", "hi")])
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    assert "<|im_end|>" in stop


def test_token_counts_use_the_models_tokenizer(llm):
    assert llm.count_tokens("hello") == 1
    assert llm.count_tokens("<|im_start|>") == 1  # special tokens are tokens, not text
    assert 5 < llm.count_tokens(SYSTEM.content) < 80


def test_stable_prefix_is_reused_across_interleaved_conversations(llm):
    other = ChatMessage("system", "You are a pirate. Speak like one.")
    first = llm.stream(_ask("When are you open?", max_tokens=5))
    first.read()
    llm.stream(CompletionRequest([other, ChatMessage("user", "Ahoy")], max_tokens=5)).read()  # another call
    again = llm.stream(_ask("Who is the dentist?", max_tokens=5))
    again.read()
    prefix_tokens = len(llm.tokenize_prompt(llm.render([SYSTEM], generation_prompt=False)[0]))
    assert again.stats.cached_tokens >= prefix_tokens  # restored from the saved prefix state
    assert again.stats.prompt_tokens - again.stats.cached_tokens < 20  # only the new turn was evaluated


def test_without_prefix_cache_everything_is_evaluated(llm):
    llm.prefix_cache_enabled = False
    try:
        stream = llm.stream(_ask("When are you open?", max_tokens=3))
        stream.read()
        assert stream.stats.cached_tokens == 0
    finally:
        llm.prefix_cache_enabled = True


def test_json_schema_constrains_the_output(llm):
    schema = {
        "type": "object",
        "properties": {
            "tool": {"type": "string", "enum": ["take_message", "transfer_call", "end_call"]},
            "for_whom": {"type": "string", "maxLength": 40},
        },
        "required": ["tool", "for_whom"],
    }
    for text in ["Please tell Dr. Patel that John called.", "Put me through to Sam.", "Bye now."]:
        out = llm.stream(_ask(text, json_schema=schema, max_tokens=60, temperature=0.0)).read()
        data = json.loads(out)
        assert data["tool"] in schema["properties"]["tool"]["enum"] and isinstance(data["for_whom"], str)


def test_cancel_stops_generation_at_the_next_token(llm):
    stream = llm.stream(_ask("Count from one to one hundred, one number per word.", max_tokens=200, temperature=0.0))
    received = []
    for delta in stream:
        received.append(delta)
        if len(received) == 3:
            stream.cancel()
    assert len(received) == 3 and stream.stats.finish_reason == "cancelled"
    # The model is free again right away.
    assert llm.stream(_ask("Hi", max_tokens=3)).read() is not None


def test_prompt_larger_than_the_window_is_refused(llm):
    with pytest.raises(ValueError, match="does not fit"):
        llm.stream(_ask("word " * 3000))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_openai_compatible_server_streams_the_same_way(llama_server):
    backend = load_backend(LLMSettings(backend="openai", base_url=llama_server, n_ctx=2048))
    assert isinstance(backend, OpenAICompatBackend)
    stream = backend.stream(_ask("Hello, who am I speaking to?", max_tokens=30, temperature=0.0))
    deltas = list(stream)
    assert len(deltas) > 3 and stream.text.strip() and stream.stats.first_token_s is not None
    assert backend.count_tokens("hello") == 1
    schema = {"type": "object", "properties": {"tool": {"type": "string", "enum": ["take_message", "end_call"]}},
              "required": ["tool"]}
    data = json.loads(backend.stream(_ask("Bye.", json_schema=schema, max_tokens=30, temperature=0.0)).read())
    assert data["tool"] in {"take_message", "end_call"}
    backend.close()


def test_unreachable_server_is_a_clear_error():
    backend = OpenAICompatBackend(f"http://127.0.0.1:{_free_port()}/v1", timeout_s=2)
    with pytest.raises(Exception, match="(?i)connect"):
        backend.stream(_ask("hi")).read()


def test_a_given_start_of_the_reply_is_continued_not_repeated(llm):
    header = '{"tool": "send_message", "arguments": {"message": "'
    stream = llm.stream(_ask("When are you open?", max_tokens=24, temperature=0.0, assistant_prefix=header))
    text = stream.read()
    assert text and not text.startswith("{")  # the model writes the message itself, after the given header
    plain = llm.stream(_ask("When are you open?", max_tokens=24, temperature=0.0)).read()
    assert text != plain


def test_choice_by_the_next_tokens_logits_follows_what_the_model_was_shown(llm):
    prefix = '{"tool": "'

    def primed(tool: str) -> CompletionRequest:
        turns = [SYSTEM]
        for question in ("Hello?", "When are you open?", "Who is the dentist?"):
            turns += [ChatMessage("user", question), ChatMessage("assistant", f'{{"tool": "{tool}", "arguments": {{}}}}')]
        return CompletionRequest([*turns, ChatMessage("user", "And on Saturday?")], max_tokens=1, assistant_prefix=prefix)

    options = ["send_message", "lookup_records"]
    assert llm.choose_continuation(primed("lookup_records"), options) == "lookup_records"
    assert llm.choose_continuation(primed("send_message"), options) == "send_message"
    # Options that begin with the same token cannot be told apart by one token: the caller must decide.
    assert llm.choose_continuation(primed("send_message"), ["search_a", "search_b"]) is None


def test_prefill_reads_ahead_so_the_turn_evaluates_only_the_rest(llm):
    history = [SYSTEM, ChatMessage("user", "Hello there."), ChatMessage("assistant", "Hello! How can I help?")]
    said_so_far = "I would like to know when Doctor Patel"
    llm.stream(CompletionRequest(history[:1] + [ChatMessage("user", "Hi")], max_tokens=1)).read()
    assert llm.prefill([*history, ChatMessage("user", said_so_far)], open_last=True) > 0
    final = llm.stream(CompletionRequest([*history, ChatMessage("user", said_so_far + " is in on Monday?")], max_tokens=2))
    final.read()
    assert final.stats.prompt_tokens - final.stats.cached_tokens <= 16  # "is in on Monday?" + the turn markers
    # Another conversation in the cache: a prefill would cost a whole prompt, so it is skipped.
    llm.stream(CompletionRequest([ChatMessage("system", "You are a pirate."), ChatMessage("user", "Ahoy")], max_tokens=1)).read()
    long_history = history + [ChatMessage("user", "word " * 150)]
    assert llm.prefill(long_history, open_last=True) == 0


def test_a_turn_read_ahead_whole_is_chosen_without_evaluating_anything(llm):
    """The transcript of a pause that may end the turn: the whole turn's prompt is read ahead (with the action's
    start and its likely header), and when the turn comes with those words its choice reads the kept logits:
    the same choice as without the read-ahead, and nothing evaluated."""
    prefix, likely = '{"tool": "', 'send_message", "arguments": {"message": "'
    options = ["send_message", "lookup_records", "end_call"]
    history = [SYSTEM, ChatMessage("user", "Hello there."), ChatMessage("assistant", "Hello! How can I help?")]
    turn = [*history, ChatMessage("user", "Is Doctor Patel in on Monday?")]
    request = CompletionRequest(turn, max_tokens=1, assistant_prefix=prefix)
    fresh = _local(parallel=1)
    try:
        expected = fresh.choose_continuation(request, options, likely)
    finally:
        fresh.close()
    llm.stream(CompletionRequest([*history, ChatMessage("user", "Hi")], max_tokens=1)).read()
    assert llm.prefill(turn, answer_prefix=prefix, likely=likely) > 20  # the question, the turn markers, the header
    evaluated = []
    original = llm._eval_reading
    llm._eval_reading = lambda *args, **kwargs: evaluated.append(args) or original(*args, **kwargs)
    try:
        assert llm.choose_continuation(request, options, likely) == expected
        assert not evaluated
        # Other words (the caller went on): the kept logits are not used.
        other = CompletionRequest([*history, ChatMessage("user", "Is Doctor Patel in on Monday morning?")],
                                  max_tokens=1, assistant_prefix=prefix)
        llm.choose_continuation(other, options, likely)
        assert evaluated
    finally:
        llm._eval_reading = original
    # The reply written after the choice continues from the read-ahead header.
    reply = llm.stream(CompletionRequest(turn, max_tokens=4, assistant_prefix=prefix + likely))
    assert reply.read().strip()


def test_a_reply_written_ahead_is_the_start_of_the_reply_and_goes_on_as_it_would(llm):
    """A whole turn read ahead with ``write``: the reply's first tokens are written then; the request for that
    prompt gives them out at once and goes on from them. Greedy, it says what a fresh model says for that turn;
    another prompt (the caller went on) does not get them."""
    prefix, likely = '{"tool": "', 'send_message", "arguments": {"message": "'
    history = [SYSTEM, ChatMessage("user", "Hello there."), ChatMessage("assistant", "Hello! How can I help?")]
    turn = [*history, ChatMessage("user", "Is Doctor Patel in on Monday?")]
    request = CompletionRequest(turn, max_tokens=24, temperature=0.0, assistant_prefix=prefix + likely)
    fresh = _local(parallel=1)
    try:
        expected = fresh.stream(request).read()
    finally:
        fresh.close()
    llm.stream(CompletionRequest([*history, ChatMessage("user", "Hi")], max_tokens=1)).read()
    assert llm.written_ahead(turn, prefix + likely) == ""
    assert llm.prefill(turn, answer_prefix=prefix, likely=likely, write=6, temperature=0.0) > 20
    written = llm.written_ahead(turn, prefix + likely)
    assert written and expected.startswith(written)
    sampled = []
    original = llm._new_sampler
    llm._new_sampler = lambda *args, **kwargs: sampled.append(1) or original(*args, **kwargs)
    try:
        reply = llm.stream(request)
        assert reply.read() == expected
        assert not sampled and reply.stats.completion_tokens >= 6  # its sampler went on
        assert llm.written_ahead(turn, prefix + likely) == ""  # used once
        # Written ahead for words the caller then added to: the longer turn's reply is written from scratch.
        llm.prefill(turn, answer_prefix=prefix, likely=likely, write=6, temperature=0.0)
        sampled.clear()
        longer = [*history, ChatMessage("user", "Is Doctor Patel in on Monday morning?")]
        llm.stream(CompletionRequest(longer, max_tokens=4, temperature=0.0, assistant_prefix=prefix + likely)).read()
        assert sampled
    finally:
        llm._new_sampler = original


PREFIX, LIKELY = '{"tool": "', 'send_message", "arguments": {"message": "'  # a spoken action's start


@contextmanager
def _writing_ahead(llm, messages, tokens):
    """A turn read ahead with up to ``tokens`` of its reply written, in a thread: yields it once writing began."""
    import threading

    started = threading.Event()
    original = llm._write_ahead
    llm._write_ahead = lambda *args: started.set() or original(*args)
    ahead = threading.Thread(target=llm.prefill, args=(messages,),
                             kwargs=dict(answer_prefix=PREFIX, likely=LIKELY, write=tokens, temperature=0.0))
    try:
        ahead.start()
        assert started.wait(30)
        yield ahead
    finally:
        ahead.join(60)
        llm._write_ahead = original


def _spoken_reply(llm, messages):
    reply = llm.stream(CompletionRequest(messages, max_tokens=2, temperature=0.0, assistant_prefix=PREFIX + LIKELY))
    reply.read()
    return reply


def test_a_live_turn_waits_for_the_context_reading_its_prompt_ahead(llm):
    """A turn that comes while its own prompt is read ahead in one context waits for that context (told to stop
    writing ahead) rather than evaluating its whole prompt again in another."""
    import time

    turn = [SYSTEM, ChatMessage("user", "Hello, I would like to book a cleaning with Sam for next Tuesday.")]
    llm.stream(CompletionRequest([ChatMessage("system", "You are a pirate."), ChatMessage("user", "Ahoy")],
                                 max_tokens=1)).read()
    with _writing_ahead(llm, turn, 400) as ahead:
        reply = _spoken_reply(llm, turn)
        time.sleep(0.2)
        assert not ahead.is_alive()  # it stopped writing (400 tokens take seconds)
    assert reply.stats.cached_tokens == reply.stats.prompt_tokens  # the read-ahead context: nothing evaluated again


def test_another_conversations_turn_does_not_wait_for_a_read_ahead(llm):
    """A read-ahead shares only the stable prefix with another caller's turn, which restores that prefix in the
    free context: the turn goes ahead at once and the read-ahead goes on writing."""
    llm.warm_prefix([SYSTEM])
    mine = [SYSTEM, ChatMessage("user", "Hello, I would like to book a cleaning with Sam for next Tuesday.")]
    with _writing_ahead(llm, mine, 300) as ahead:
        reply = _spoken_reply(llm, [SYSTEM, ChatMessage("user", "Do you take walk-ins on Saturdays?")])
        assert ahead.is_alive()  # still writing: nobody asked it to stop
    assert reply.stats.cached_tokens >= llm.count_tokens(SYSTEM.content)  # the stable prefix, restored


def test_a_turns_state_is_kept_after_its_reply_even_when_its_context_is_taken(llm):
    """A live turn's KV cache is kept after its reply up to the end of its messages: other calls then take
    both contexts, and the conversation's next turn still restores it, reading only the reply and its new words
    (without it, the whole turn was read again when the after-reply prefill found the context taken)."""
    history = [SYSTEM, ChatMessage("user", "Hi, I'd like to move my cleaning appointment with Sam to Thursday.")]
    reply = llm.stream(CompletionRequest(history, max_tokens=12, temperature=0.0))
    said = reply.read()
    for other in ("You are a pirate.", "You are a poet."):  # both contexts now hold other conversations
        llm.stream(CompletionRequest([ChatMessage("system", other), ChatMessage("user", "Ahoy")], max_tokens=1)).read()
    turn = llm.tokenize_prompt(llm.render(history, generation_prompt=False)[0])
    following = [*history, ChatMessage("assistant", said), ChatMessage("user", "Thanks. And the time?")]
    nxt = llm.stream(CompletionRequest(following, max_tokens=1, temperature=0.0))
    nxt.read()
    assert nxt.stats.cached_tokens >= len(turn)


def test_the_model_yields_between_tokens_to_urgent_work(llm):
    calls = []
    llm.yield_to = lambda: calls.append(1)
    try:
        llm.stream(_ask("Say hello.", max_tokens=8, temperature=0.0)).read()
    finally:
        llm.yield_to = None
    assert len(calls) >= 2


def test_background_work_gives_the_model_up_to_a_live_turn(llm):
    import threading
    import time

    notes = CompletionRequest([SYSTEM, ChatMessage("user", "Write a long story about the clinic.")], max_tokens=400,
                              temperature=0.0, background=True)
    background = llm.stream(notes)
    first = threading.Event()

    def run_background():
        for _ in background:
            first.set()

    worker = threading.Thread(target=run_background)
    worker.start()
    first.wait(10)
    started = time.perf_counter()
    live = llm.stream(_ask("When are you open?", max_tokens=4))
    live.read()
    waited = time.perf_counter() - started
    worker.join(10)
    assert background.stats.finish_reason == "preempted" and background.stats.completion_tokens < 400
    assert waited < 2.0  # the live turn did not wait for 400 tokens of notes
    text, stats = llm.complete(notes)  # alone, background work runs to its end
    assert stats.finish_reason in {"stop", "length"} and text


def test_calls_taking_turns_each_resume_their_own_conversation(llm):
    def conversation(system: str, turns: int) -> list[ChatMessage]:
        messages = [ChatMessage("system", system)]
        for i in range(turns):
            messages += [ChatMessage("user", f"Question number {i} about the opening hours and prices?"),
                         ChatMessage("assistant", f"Answer number {i}: we are open from eight to five, and a check-up costs fifty dollars.")]
        return messages

    first, second = conversation(SYSTEM.content, 6), conversation("You are a pirate receptionist. Speak like one.", 6)
    for history in (first, second):  # each call's reply has just been spoken: its state is kept
        llm.stream(CompletionRequest(history[:-1], max_tokens=1)).read()
        assert llm.prefill(history) >= 0
    question = CompletionRequest([*first, ChatMessage("user", "And on Sunday?")], max_tokens=12, temperature=0.0)
    again = llm.stream(question)
    again.read()  # the other call used the model last: this call's conversation is restored, not re-read
    assert again.stats.prompt_tokens - again.stats.cached_tokens < 20
    fresh = _local()
    fresh.prefix_cache_enabled = False
    try:
        assert fresh.stream(question).read() == again.text  # the restored state is the same conversation
    finally:
        fresh.close()


def _side_by_side(backend) -> dict[str, float]:
    """Two calls' replies requested at once: when each one's first and last words came."""
    import threading
    import time

    seen: dict[str, float] = {}

    def reply(name: str, text: str) -> None:
        for _ in backend.stream(_ask(text, max_tokens=40, temperature=0.0)):
            seen.setdefault(f"{name} first", time.perf_counter())
        seen[f"{name} done"] = time.perf_counter()

    threads = [threading.Thread(target=reply, args=args) for args in
               (("a", "Describe the clinic and its staff in detail."), ("b", "Tell me everything about your prices."))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return seen


def test_two_calls_are_answered_side_by_side_not_one_after_the_other(llm):
    seen = _side_by_side(llm)  # two contexts (the default): both replies under way at once
    assert seen["a first"] < seen["b done"] and seen["b first"] < seen["a done"]
    single = _local(parallel=1)
    try:
        seen = _side_by_side(single)  # one context: the second reply waits for the first to end
        first, second = sorted("ab", key=lambda name: seen[f"{name} first"])
        assert seen[f"{second} first"] > seen[f"{first} done"]
    finally:
        single.close()


def test_a_batch_uses_the_second_thread_only_while_no_other_context_works(llm):
    """Beside another context's decode, a two-thread batch waited on its descheduled thread at every barrier
    (a 20-token batch 304 ms p50 against 130 ms with one thread, 70 ms alone with two)."""
    import llama_cpp

    first, second = llm._contexts
    with llm._context(only=first) as alone:
        assert llama_cpp.llama_n_threads_batch(alone.ctx) == 2  # LLMSettings.n_threads_batch
        with llm._context(only=second) as beside:
            assert llama_cpp.llama_n_threads_batch(beside.ctx) == 1  # LLMSettings.n_threads
            assert llama_cpp.llama_n_threads(beside.ctx) == 1
    with llm._context(only=second) as alone_again:
        assert llama_cpp.llama_n_threads_batch(alone_again.ctx) == 2


def test_the_stable_prefix_is_warmed_in_every_context(llm):
    messages = [ChatMessage("system", "You are Zed, the night porter of the Grand Hotel.")]
    llm.warm_prefix(messages)
    tokens = llm.tokenize_prompt(llm.render(messages, generation_prompt=False)[0])
    assert len(llm._contexts) == 2  # the default: two calls' first turns both start from the warmed prefix
    assert all(llm._held_by(context.llm, tokens) == len(tokens) for context in llm._contexts)


def test_flash_attention_is_on_with_gpu_layers_and_off_on_the_cpu_unless_set(llm):
    import llama_cpp

    expected = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if GPU_LAYERS else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    assert all(context.llm.context_params.flash_attn_type == expected for context in llm._contexts)
    forced = _local(parallel=1, flash_attn="on")
    try:
        assert forced._llm.context_params.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        assert forced.stream(_ask("Are you open on Monday?", max_tokens=12, temperature=0.0)).read().strip()
    finally:
        forced.close()


def test_the_reply_is_the_one_llama_cpp_python_would_give_stop_strings_included(llm):
    """Our token loop (each token decoded once) against the library's create_completion (the reference)."""
    llm.prefix_cache_enabled = False  # both from an empty cache: the same evaluation, token for token
    try:
        request = _ask("Describe the clinic and its staff in detail.", max_tokens=40, temperature=0.0)
        _, template_stop, tokens = llm._prompt_tokens(request)

        def reference(stop: list[str]) -> str:
            with llm._context(tokens) as context:
                context.reset()
                reply = context.create_completion(prompt=tokens, max_tokens=40, temperature=0.0, stop=stop)
                return reply["choices"][0]["text"]

        whole = reference(template_stop)
        assert llm.stream(request).read() == whole and len(whole) > 40
        cut = whole[20:28]  # a stop string that spans tokens: nothing of it may be spoken
        stopped = llm.stream(_ask("Describe the clinic and its staff in detail.", max_tokens=40, temperature=0.0,
                                  stop=[cut]))
        assert stopped.read() == reference([*template_stop, cut]) == whole[: whole.index(cut)]
        assert stopped.stats.finish_reason == "stop"
    finally:
        llm.prefix_cache_enabled = True


def test_a_schema_constrained_reply_is_the_one_llama_cpp_python_would_give(llm):
    """The grammar is asked about the sampled token only (brain.sampling); greedy, that must change nothing."""
    from llama_cpp import LlamaGrammar

    schema = {"type": "object", "properties": {"tool": {"type": "string", "enum": ["take_message", "answer"]},
                                               "text": {"type": "string", "maxLength": 80}},
              "required": ["tool", "text"]}
    llm.prefix_cache_enabled = False
    try:
        request = _ask("Please tell Dr. Patel I called about my crown.", max_tokens=60, temperature=0.0,
                       json_schema=schema)
        _, template_stop, tokens = llm._prompt_tokens(request)
        with llm._context(tokens) as context:
            context.reset()
            grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            reply = context.create_completion(prompt=tokens, max_tokens=60, temperature=0.0, stop=template_stop,
                                              grammar=grammar)
        ours = llm.stream(request).read()
        assert ours == reply["choices"][0]["text"]
        assert json.loads(ours)["tool"] in {"take_message", "answer"}
    finally:
        llm.prefix_cache_enabled = True
