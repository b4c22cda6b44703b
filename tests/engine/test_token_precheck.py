"""The check that spares compiling a patient's token pattern (deid.engine.review.may_hold) never
says a text holds no token where the pattern finds one: over generated ASCII texts and tokens
(words with spaces, case changes, white space runs, punctuation), and for what is not ASCII."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from deid.engine.review import date_tokens, may_hold, name_tokens, token_pattern

_WORD = st.text(alphabet="abcXYZ019-./", min_size=1, max_size=6)
_TOKEN = st.lists(_WORD, min_size=1, max_size=3).map(" ".join)
_GAP = st.sampled_from([" ", "  ", "\t", "\n ", "", ", ", "^"])


@st.composite
def _text_with_tokens(draw: st.DrawFn) -> tuple[str, tuple[str, ...]]:
    tokens = tuple(draw(st.lists(_TOKEN, min_size=1, max_size=4, unique=True)))
    pieces = []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):  # a token as free text writes it: any case, any white space
            words = draw(st.sampled_from(tokens)).split(" ")
            space = draw(st.sampled_from([" ", "  ", "\t", " \n"]))
            word = space.join(words)
            pieces.append(word.upper() if draw(st.booleans()) else word.swapcase())
        else:
            pieces.append(draw(_WORD))
        pieces.append(draw(_GAP))
    return "".join(pieces), tokens


@settings(max_examples=400, deadline=None)
@given(_text_with_tokens())
def test_a_text_the_pattern_finds_a_token_in_may_hold_one(
        case: tuple[str, tuple[str, ...]]) -> None:
    text, tokens = case
    if token_pattern(tokens).search(text) is not None:
        assert may_hold(text, tokens)


def test_a_text_without_any_word_of_the_tokens_holds_none() -> None:
    tokens = ("CHEN MEI-LING", "A123456789", "2017-04-15")
    assert not may_hold("CT SCAN-UPPER ABDOMEN", tokens)
    assert may_hold("seen by chen  mei-ling today", tokens)
    assert token_pattern(tokens).search("seen by chen  mei-ling today")


def test_what_is_not_ascii_is_left_to_the_pattern() -> None:
    # re.IGNORECASE folds the Kelvin sign to k, which str.lower does not
    assert re.search("k", "\u212a", re.IGNORECASE)
    assert may_hold("\u212aELVIN", ("kelvin",))
    assert may_hold("kelvin", ("\u212aelvin",))  # a token that is not ASCII may match ASCII text
    assert token_pattern(("\u212aelvin",)).search("kelvin")
    assert may_hold("陳美玲 CT", ("陳美玲",))


def test_a_token_no_ascii_letter_matches_is_in_no_ascii_text() -> None:
    tokens = ("陳美玲", "JÜRGEN", "GARCIA")
    assert not may_hold("CT SCAN-UPPER ABDOMEN JURGEN", tokens)
    assert may_hold("Dr Garcia", tokens)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aksiAKSIü\u212a\u017f\u0131\u0130陳 ", max_size=8),
       st.lists(st.text(alphabet="aksiAKSIü\u212a\u017f\u0131\u0130陳 ", min_size=3, max_size=6),
                min_size=1, max_size=3, unique=True))
def test_letters_that_fold_across_ascii_are_left_to_the_pattern(text: str,
                                                               tokens: list[str]) -> None:
    if token_pattern(tuple(tokens)).search(text) is not None:
        assert may_hold(text, tuple(tokens))


_NAME_PART = st.text(alphabet="ACEGHIKLMNORSTUWY'-. ", min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(_NAME_PART, min_size=1, max_size=3), st.dates(), st.data())
def test_a_patients_own_tokens_are_never_missed(parts: list[str], day, data: st.DataObject) -> None:
    """Tokens as deid makes them (a person name's components and words, a date's written forms)
    in text that writes them as prose does: may_hold says yes wherever the pattern finds one."""
    tokens = tuple(sorted(name_tokens("^".join(parts)) | date_tokens(day.strftime("%Y%m%d"))))
    if not tokens:
        return
    token = data.draw(st.sampled_from(tokens))
    around = st.text(alphabet="abc XYZ 019,;:()'\"-_/\n\t", max_size=6)
    written = token.replace(" ", data.draw(st.sampled_from([" ", "  ", "\t", "\n "])))
    case = data.draw(st.sampled_from([str.upper, str.lower, str.title, str.swapcase]))
    text = data.draw(around) + case(written) + data.draw(around)
    if token_pattern(tokens).search(text) is not None:
        assert may_hold(text, tokens)
