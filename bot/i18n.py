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
"""

from __future__ import annotations

import contextlib
import functools
import gettext
import io
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
    """`message` in the current language."""
    return translations(_person.get()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return translations(_person.get()).ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Mark a text for the catalog without translating it yet (it is translated where it is shown)."""
    return message


class Words:
    """A text put into the reader's language when it is shown, not when it is made.

    What a use case or the background loop has to say (why a restore was not sent)
    is made before anyone knows who will read it; it is rendered, by `str()` or in a
    format, in the language of whoever reads it then. `english()` is for the audit log.
    """

    def __init__(self, message: str, **values: object):
        self.message, self.values = message, values

    def __str__(self) -> str:
        return _(self.message).format(**{name: str(value) for name, value in self.values.items()})

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
    """A date and time in UTC as the reader writes it: `2026-11-27 15:51 UTC`, `2026년 11월 27일 15:51 (UTC)`."""
    utc = moment.astimezone(UTC)
    if _person.get() == "ko":
        return f"{utc.year}년 {utc.month}월 {utc.day}일 {utc:%H:%M} (UTC)"
    return utc.strftime("%Y-%m-%d %H:%M UTC")
