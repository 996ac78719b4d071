"""Words in the reader's language: English (the source) and Korean, from gettext catalogs.

Texts are marked with `_()` (and `ngettext()` where English needs a plural);
texts kept in tables are marked with `N_()` and translated where they are
shown. The Korean catalog is `bot/locale/ko/LC_MESSAGES/messages.po`,
extracted and updated with Babel (README, "Languages"); it is read with Babel
at start (`build_runtime`) and compiled in memory, so nothing compiled is kept
in the repository.

Whose language: `speaking(person, team)` sets it for the work in hand (a
request, a background report) in a ContextVar, so renderers need no extra
argument. What goes to a channel is for the team: renderers of announcements
and approval cards are wrapped in `for_the_team`, which renders them in the
team's language (BACKUPBOT_LANGUAGE) whoever caused them.

Korean particles: the catalog writes a particle after a placeholder in its
fallback form (`#{id}*을(를)`, `{server}(으)로`), since the word it follows is
not known when the text is written. `_()` and `ngettext()` hand Korean texts
back as `KoreanText`, whose `format()` picks the right form from what was put
in front of it (`particle_after`): after a number by how its last digit is
read, after a Hangul syllable by its final consonant, skipping mrkdwn markers
(`*`, `_`, `~`, `` ` ``) and a parenthesis that only adds to the word before it
(`*web-01* (12345)`, `#5023(수동, … 생성)`). After anything else (a name in Latin
letters, a quotation) the fallback form stays: how a Latin name is read is
not known. Only the catalog's own text is changed, never a value put into it.
"""

from __future__ import annotations

import contextlib
import functools
import gettext
import io
import re
import string
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("en", "ko")
SOURCE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"

_person: ContextVar[str] = ContextVar("language", default=SOURCE)
_reader: ContextVar[str | None] = ContextVar("reader", default=None)  # whose language `_person` is, if known
_team: ContextVar[str] = ContextVar("team_language", default=SOURCE)

P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog for `language`, read from its .po file with Babel and compiled in memory once."""
    if language == SOURCE:
        return gettext.NullTranslations()
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def language_name(language: str) -> str:
    """A language's name in the reader's language."""
    names = {"en": N_("English"), "ko": N_("Korean")}
    return _(names[language])


def current() -> str:
    return _person.get()


def reader() -> str | None:
    """The person whose language is in force (set by `speaking(..., reader=)`), if any."""
    return _reader.get()


def _(message: str) -> str:
    """`message` in the current language (the source language is the text itself: nothing to look up)."""
    language = _person.get()
    if language == SOURCE:
        return message
    return _in_language(translations(language).gettext(message))


def ngettext(singular: str, plural: str, count: int) -> str:
    language = _person.get()
    if language == SOURCE:
        return singular if count == 1 else plural
    return _in_language(translations(language).ngettext(singular, plural, count))


def _in_language(text: str) -> str:
    return KoreanText(text) if _person.get() == "ko" else text


def N_(message: str) -> str:
    """Mark a text for the catalog without translating it yet (it is translated where it is shown)."""
    return message


def _value_words(name: str, value: object) -> str:
    """A value put into a `Words`: a backup's `status` (as the API spells it) in the reader's words."""
    if name == "status" and isinstance(value, str):
        return status_word(value)
    return str(value)


class Words:
    """A text put into the reader's language when it is shown, not when it is made.

    What a use case or the background loop has to say (why a restore was not sent)
    is made before anyone knows who will read it; it is rendered, by `str()` or in a
    format, in the language of whoever reads it then. `english()` is for the audit log.
    """

    def __init__(self, message: str, **values: object):
        self.message, self.values = message, values

    def __str__(self) -> str:
        return _(self.message).format(**{name: _value_words(name, value) for name, value in self.values.items()})

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Words) and (self.message, self.values) == (other.message, other.values)

    def __hash__(self) -> int:
        return hash(self.message)

    def __repr__(self) -> str:
        return f"Words({self.english()!r})"

    def english(self) -> str:
        with speaking(SOURCE):
            return str(self)


@contextlib.contextmanager
def speaking(person: str, team: str | None = None, *, reader: str | None = None) -> Iterator[None]:
    """Render in `person`'s language (and announcements in `team`'s) until the block ends;
    `reader` names whose language that is, so nested work for the same person need not look it up again."""
    person_token = _person.set(person if person in LANGUAGES else SOURCE)
    reader_token = _reader.set(reader)
    team_token = _team.set(team if team in LANGUAGES else _team.get()) if team is not None else None
    try:
        yield
    finally:
        _reader.reset(reader_token)
        _person.reset(person_token)
        if team_token is not None:
            _team.reset(team_token)


def for_the_team(render: Callable[P, R]) -> Callable[P, R]:
    """A renderer of what goes to a channel: it speaks the team's language, whoever caused it."""

    @functools.wraps(render)
    def in_team_language(*args: P.args, **kwargs: P.kwargs) -> R:
        with speaking(_team.get()):
            return render(*args, **kwargs)

    return in_team_language


def date_words(moment: datetime) -> str:
    """A date and time in UTC as the reader writes it: `2026-11-27 15:51 UTC`, `2026년 11월 27일 15:51 UTC`
    (no parentheses: the date is often inside the catalog's own)."""
    utc = moment.astimezone(UTC)
    if _person.get() == "ko":
        return f"{utc.year}년 {utc.month}월 {utc.day}일 {utc:%H:%M} UTC"
    return utc.strftime("%Y-%m-%d %H:%M UTC")


# --- the backup API's own values, as people read them -----------------------------------------

BACKUP_STATUS = {
    "completed": N_("completed"),
    "in_progress": N_("in progress"),
    "failed": N_("failed"),
    "pending": N_("pending"),
    "queued": N_("queued"),
    "creating": N_("being created"),
    "running": N_("running"),
}
BACKUP_TYPE = {"manual": N_("manual"), "automatic": N_("automatic")}


def status_word(status: str) -> str:
    """A backup's status in the reader's words (`in_progress` → `in progress`, `진행 중`); one the bot
    does not know is shown as the API spells it."""
    key = status.replace(" ", "_")
    return _(BACKUP_STATUS[key]) if key in BACKUP_STATUS else status.replace("_", " ")


def type_word(backup_type: str) -> str:
    """A backup's type in the reader's words (`manual`, `수동`); where it is typed, it stays English."""
    return _(BACKUP_TYPE[backup_type]) if backup_type in BACKUP_TYPE else backup_type


# --- Korean particles ------------------------------------------------------------------------

# A particle's fallback form → (after a consonant, after a vowel); `(으)로` also takes 로 after ㄹ.
_PARTICLES = {
    "이(가)": ("이", "가"),
    "가(이)": ("이", "가"),
    "을(를)": ("을", "를"),
    "를(을)": ("을", "를"),
    "은(는)": ("은", "는"),
    "는(은)": ("은", "는"),
    "과(와)": ("과", "와"),
    "와(과)": ("과", "와"),
    "아(야)": ("아", "야"),
    "(으)로": ("으로", "로"),
    "(이)": ("이", ""),
}
FALLBACK_PARTICLE = re.compile("|".join(re.escape(form) for form in _PARTICLES))
MARKERS = "*_~`"
# How the last digit of a number is read (영 일 이 삼 사 오 육 칠 팔 구; 10, 100… end in 십 백 천 만):
# ending in a consonant, and in ㄹ (which takes 로, not 으로).
_DIGIT_CONSONANT = set("0136780")
_DIGIT_RIEUL = set("178")


def particle_after(text: str, fallback: str) -> str:
    """The particle `fallback` (`이(가)`, `(으)로`…) in the form that follows `text`, or the fallback
    itself when the end of `text` can't be read: a name in Latin letters, a quotation, a symbol."""
    final = _final_sound(text)
    if final is None:
        return fallback
    after_consonant, after_vowel = _PARTICLES[fallback]
    if fallback == "(으)로" and final == "ㄹ":
        return after_vowel
    return after_consonant if final else after_vowel


def _final_sound(text: str) -> str | None:
    """ "ㄹ", another consonant (a non-empty string), "" for a vowel, or None if unknown."""
    text = text.rstrip(MARKERS)
    if text.endswith(")"):  # `*web-01* (12345)`, `#5023(수동, … 생성)`: the word before the parenthesis
        depth = 0
        for i in range(len(text) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(text[i], 0)
            if depth == 0:
                text = text[:i].rstrip(" ").rstrip(MARKERS)
                break
        else:
            return None
    last = text[-1:]
    if "0" <= last <= "9":
        return ("ㄹ" if last in _DIGIT_RIEUL else "c") if last in _DIGIT_CONSONANT else ""
    if "가" <= last <= "힣":
        final = (ord(last) - 0xAC00) % 28
        return "ㄹ" if final == 8 else ("c" if final else "")
    return None


def resolve_particles(text: str, before: str = "") -> str:
    """`text` with each fallback particle it holds put in its right form, where what precedes it
    (in `before`, then in `text`) can be read."""
    parts, end = [], 0
    for match in FALLBACK_PARTICLE.finditer(text):
        parts.append(text[end : match.start()])
        parts.append(particle_after(before + "".join(parts), match.group(0)))
        end = match.end()
    parts.append(text[end:])
    return "".join(parts)


_FORMATTER = string.Formatter()


class KoreanText(str):
    """A Korean text from the catalog: `format()` fills it in as `str.format` does, then puts each
    fallback particle of the catalog's text (never of a value) in the form that fits what precedes it."""

    def format(self, *args: object, **kwargs: object) -> str:
        out, auto = "", 0
        for literal, field, spec, conversion in _FORMATTER.parse(self):
            out += resolve_particles(literal, out)
            if field is None:
                continue
            if field == "":
                field, auto = str(auto), auto + 1
            value, _key = _FORMATTER.get_field(field, args, kwargs)
            value = _FORMATTER.convert_field(value, conversion)
            out += _FORMATTER.format_field(value, _FORMATTER.vformat(spec, args, kwargs) if spec else "")
        return out
