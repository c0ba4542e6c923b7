"""Sentence chunking for streamed TTS: where pieces end, and that streaming never changes them."""

from __future__ import annotations

import random

import pytest

from speech.sentences import SentenceChunker, split_sentences


def stream(chunker: SentenceChunker, fragments: list[str]) -> list[str]:
    pieces: list[str] = []
    for fragment in fragments:
        pieces += chunker.push(fragment)
    return pieces + chunker.flush()


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("Great!  See you soon.", ["Great!", "See you soon."]),
        ("Really?! Yes.", ["Really?!", "Yes."]),
        ("Wait… what? OK...", ["Wait…", "what?", "OK..."]),
        ("No trailing punctuation", ["No trailing punctuation"]),
        ("", []),
        ("   \n  ", []),
        # abbreviations and initials
        (
            "Mr. Smith met Dr. Jones on St. Mark's road. They talked.",
            ["Mr. Smith met Dr. Jones on St. Mark's road.", "They talked."],
        ),
        ("Mrs. Lee and J. Smith agree. Good.", ["Mrs. Lee and J. Smith agree.", "Good."]),
        ("Bring ID, e.g. a passport, i.e. photo ID. Thanks.", ["Bring ID, e.g. a passport, i.e. photo ID.", "Thanks."]),
        ("It's us vs. them. Fine.", ["It's us vs. them.", "Fine."]),
        ("Meet at 5 p.m. tomorrow. Or 9 a.m. on Friday.", ["Meet at 5 p.m. tomorrow.", "Or 9 a.m. on Friday."]),
        # a sentence-final abbreviation ends the sentence when a capitalised word follows
        ("We close at 5 p.m. Call before then.", ["We close at 5 p.m.", "Call before then."]),
        (
            "Apples, pears, etc. are fresh. We sell fruit etc. Bye.",
            ["Apples, pears, etc. are fresh.", "We sell fruit etc.", "Bye."],
        ),
        # numbers, prices, domains
        ("It is 3.5 miles. It costs $12.50. Done.", ["It is 3.5 miles.", "It costs $12.50.", "Done."]),
        ("Count 1...5 slowly. Now.", ["Count 1...5 slowly.", "Now."]),
        ("Visit example.com today. Thanks.", ["Visit example.com today.", "Thanks."]),
        ("The answer is no. Sorry.", ["The answer is no.", "Sorry."]),
        ("No. 5 is ready.", ["No. 5 is ready."]),
        # quotes and brackets stay with their sentence
        ('He said "Hi." Then he left.', ['He said "Hi."', "Then he left."]),
        ("(It is open.) Come in.", ["(It is open.)", "Come in."]),
        # line breaks end pieces; list numbers are not sentence ends
        ("Options:\n1. Call us\n2. Email us", ["Options:", "1. Call us", "2. Email us"]),
        ("# Hours\nWe open at nine.", ["# Hours", "We open at nine."]),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_push_emits_sentences_as_they_complete() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Hel") == []
    assert chunker.push("lo there") == []
    assert chunker.push(". How") == ["Hello there."]
    assert chunker.push(" are you?") == []  # a "?" at the end of the buffer waits for the next fragment
    assert chunker.push(" I") == ["How are you?"]
    assert chunker.flush() == ["I"]


def test_boundary_at_end_of_push_waits_for_next_fragment() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Please ask Mr.") == []
    assert chunker.push(" Smith.") == []
    assert chunker.push(" He") == ["Please ask Mr. Smith."]
    assert chunker.push(" knows.") == []
    assert chunker.flush() == ["He knows."]


def test_sentence_final_abbreviation_waits_for_the_next_word() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Come at 5 p.m.") == []
    assert chunker.push(" ") == []  # "p.m. " may still be followed by "tomorrow" or by "Then"
    assert chunker.push("tomorrow.") == []
    assert chunker.push(" Bye") == ["Come at 5 p.m. tomorrow."]
    assert chunker.push("s at 5 p.m. ") == []
    assert chunker.push("Then") == ["Byes at 5 p.m."]
    assert chunker.flush() == ["Then"]


def test_flush_emits_the_pending_remainder() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Thanks for calling Dr.") == []
    assert chunker.flush() == ["Thanks for calling Dr."]
    assert chunker.flush() == []


LONG_REPLY = (
    "Thanks for calling Acme Plumbing, this is Joe. Mr. Smith's order #12345 ships at 9 a.m. tomorrow, "
    "e.g. before lunch. It costs $12.50, i.e. the usual rate; J. Smith approved it. Is 3.5 hours OK?! "
    'Great... "See you then." We close at 5 p.m. Call before then, or email us.\n'
    "1. Bring the invoice\n2. Bring your ID\n"
    "Anything else — maybe the sink? Goodbye!"
)


def test_character_by_character_stream_matches_split_sentences() -> None:
    expected = split_sentences(LONG_REPLY)
    assert expected == [
        "Thanks for calling Acme Plumbing, this is Joe.",
        "Mr. Smith's order #12345 ships at 9 a.m. tomorrow, e.g. before lunch.",
        "It costs $12.50, i.e. the usual rate; J. Smith approved it.",
        "Is 3.5 hours OK?!",
        "Great...",
        '"See you then."',
        "We close at 5 p.m.",
        "Call before then, or email us.",
        "1. Bring the invoice",
        "2. Bring your ID",
        "Anything else — maybe the sink?",
        "Goodbye!",
    ]
    assert stream(SentenceChunker(), list(LONG_REPLY)) == expected


@pytest.mark.parametrize(
    "options",
    [{}, {"first_clause_min_chars": 10}, {"max_chars": 40}, {"first_clause_min_chars": 20, "max_chars": 30}],
)
def test_random_fragmentation_never_changes_the_pieces(options: dict[str, int]) -> None:
    rng = random.Random(1234)
    whole = stream(SentenceChunker(**options), [LONG_REPLY])
    assert stream(SentenceChunker(**options), list(LONG_REPLY)) == whole
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(LONG_REPLY)), rng.randint(1, 40)))
        fragments = [LONG_REPLY[a:b] for a, b in zip([0, *cuts], [*cuts, len(LONG_REPLY)])]
        assert stream(SentenceChunker(**options), fragments) == whole


def test_first_clause_starts_speech_early() -> None:
    text = "Well, thank you for calling Acme Plumbing, how can I help? We are open, as always, until five."
    chunker = SentenceChunker(first_clause_min_chars=10)
    # "Well," is too short; the first clause boundary past 10 characters ends the first piece,
    # and later pieces are whole sentences even though they contain commas.
    expected = [
        "Well, thank you for calling Acme Plumbing,",
        "how can I help?",
        "We are open, as always, until five.",
    ]
    assert stream(chunker, [text]) == expected
    assert stream(SentenceChunker(first_clause_min_chars=10), list(text)) == expected


def test_first_clause_waits_for_whitespace_after_the_mark() -> None:
    chunker = SentenceChunker(first_clause_min_chars=5)
    assert chunker.push("It costs 1,250") == []  # a thousands comma is not a clause boundary
    assert chunker.push(" dollars, plus") == ["It costs 1,250 dollars,"]
    assert chunker.push(" tax, sadly") == []
    assert chunker.flush() == ["plus tax, sadly"]


def test_first_clause_dashes_and_colons() -> None:
    assert stream(SentenceChunker(first_clause_min_chars=5), ["Sure thing — one moment."]) == [
        "Sure thing —",
        "one moment.",
    ]
    assert stream(SentenceChunker(first_clause_min_chars=5), ["Our hours: nine to five."]) == [
        "Our hours:",
        "nine to five.",
    ]
    assert stream(SentenceChunker(first_clause_min_chars=5), ["A well-known fact. Yes."]) == [
        "A well-known fact.",
        "Yes.",
    ]


def test_flush_rearms_the_first_clause_rule() -> None:
    chunker = SentenceChunker(first_clause_min_chars=5)
    assert stream(chunker, ["Hello there, friend. Bye, now."]) == ["Hello there,", "friend.", "Bye, now."]
    assert stream(chunker, ["Hello again, friend."]) == ["Hello again,", "friend."]


def test_max_chars_cuts_at_last_clause_boundary() -> None:
    text = "one two three, four five six, seven eight nine ten eleven twelve."
    pieces = stream(SentenceChunker(max_chars=40), [text])
    assert pieces == ["one two three, four five six,", "seven eight nine ten eleven twelve."]


def test_max_chars_falls_back_to_last_space_then_hard_cut() -> None:
    assert stream(SentenceChunker(max_chars=12), ["aaaa bbbb cccc dddd."]) == ["aaaa bbbb", "cccc dddd."]
    assert stream(SentenceChunker(max_chars=5), ["abcdefghijkl"]) == ["abcde", "fghij", "kl"]


def test_default_max_chars_bounds_run_on_text() -> None:
    text = "word " * 100
    pieces = split_sentences(text)
    assert all(len(piece) <= 300 for piece in pieces)
    assert " ".join(pieces).split() == text.split()


def test_invalid_options() -> None:
    with pytest.raises(ValueError):
        SentenceChunker(max_chars=0)
    with pytest.raises(ValueError):
        SentenceChunker(first_clause_min_chars=-1)


def _phrases(text: str, step: int) -> list[str]:
    chunker = SentenceChunker(first_clause_min_chars=20, first_phrase_min_words=4)
    return stream(chunker, [text[i : i + step] for i in range(0, len(text), step)])


@pytest.mark.parametrize("step", [1, 2, 5, 1000])
def test_a_long_first_sentence_may_begin_with_a_phrase(step):
    text = "The lower case being in fact invented in the early days of the Middle Ages. It is true, in part."
    assert _phrases(text, step) == ["The lower case being", "in fact invented in the early days of the Middle Ages.",
                                    "It is true, in part."]  # later pieces are whole sentences


@pytest.mark.parametrize("text, first", [
    ("I am sorry but I do not have that information.", "I am sorry but I do not have that information."),  # too short before "but"
    ("I'm afraid we do not have any appointments left.", "I'm afraid we do not have any appointments left."),  # after "not": no
    ("Our front desk would like to help with that today.", "Our front desk would like to help"),  # "to": no; "with": yes
    ("Thank you very much for calling and have a nice day.", "Thank you very much for calling"),
    ("Our office hours are from nine to five, Monday to Friday.", "Our office hours are"),  # the earlier cut wins
    ("Please call back to the address of the person who hired you.", "Please call back to the address"),
    ("I can send you a lot of information about that.", "I can send you a lot of information"),  # "a lot | of": no
])
def test_phrase_cuts_only_where_a_speaker_could_breathe(text, first):
    assert _phrases(text, 3)[0] == first
    assert all(_phrases(text, step) == _phrases(text, 1000) for step in (1, 2, 4, 7))


def test_without_the_option_the_first_piece_is_a_clause_or_sentence():
    chunker = SentenceChunker(first_clause_min_chars=20)
    assert stream(chunker, ["The lower case being in fact invented in the early days."]) == [
        "The lower case being in fact invented in the early days."]
