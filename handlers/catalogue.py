"""Every customer-facing text, in English and Kiswahili, looked up by key.

The texts live in ``catalogue.toml`` beside this module (package data), read once on first use. A key is
the TOML table path plus the path under a language table, so ``[stage.assessed] en.title = "..."`` is
the English text of ``stage.assessed.title``, and ``[alert.released] sw = "..."`` the Kiswahili text of
``alert.released``. Values are ``str.format`` templates.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources

LANGUAGES = ("en", "sw")
_DEFAULT = "en"
_RESOURCE = "catalogue.toml"


def text(key: str, lang: str, **values: object) -> str:
    """The text for ``key`` in ``lang``, with ``values`` filled in.

    An unknown or missing language falls back to English ("sw-KE" and "SW" count as "sw"). An unknown
    key raises KeyError, and so does a placeholder the caller gave no value for.
    """
    try:
        entry = _entries()[key]
    except KeyError:
        raise KeyError(f"no catalogue text {key!r}") from None
    template = entry.get(_language(lang)) or entry.get(_DEFAULT)
    if template is None:
        raise KeyError(f"catalogue text {key!r} has no {_language(lang)!r} or {_DEFAULT!r} wording")
    try:
        return template.format(**values)
    except KeyError as missing:
        raise KeyError(f"catalogue text {key!r} needs a value for {missing.args[0]!r}") from None


def keys() -> list[str]:
    """Every key in the catalogue, sorted."""
    return sorted(_entries())


def _language(lang: str) -> str:
    code = (lang or "").strip().lower().replace("_", "-").split("-", 1)[0]
    return code if code in LANGUAGES else _DEFAULT


@cache
def _entries() -> dict[str, dict[str, str]]:
    source = resources.files("handlers").joinpath(_RESOURCE).read_text(encoding="utf-8")
    return _flatten(tomllib.loads(source))


def _flatten(document: Mapping[str, object]) -> dict[str, dict[str, str]]:
    """Turn the TOML tree into ``{key: {lang: template}}``; ValueError for a misplaced or repeated text."""
    entries: dict[str, dict[str, str]] = {}

    def walk(table: Mapping[str, object], path: tuple[str, ...]) -> None:
        for name, value in table.items():
            if name in LANGUAGES:
                for subpath, template in _leaves(value, path + (name,)):
                    key = ".".join(path + subpath)
                    if not key:
                        raise ValueError(f"{_RESOURCE}: a text at the top level has no key")
                    wordings = entries.setdefault(key, {})
                    if name in wordings:
                        raise ValueError(f"{_RESOURCE}: {key!r} is defined twice in {name!r}")
                    wordings[name] = template
            elif isinstance(value, Mapping):
                walk(value, path + (name,))
            else:
                where = ".".join(path + (name,))
                raise ValueError(f"{_RESOURCE}: {where!r} is not under a language ({', '.join(LANGUAGES)})")

    walk(document, ())
    return entries


def _leaves(value: object, where: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(value, str):
        yield (), value
    elif isinstance(value, Mapping):
        for name, inner in value.items():
            if name in LANGUAGES:
                raise ValueError(f"{_RESOURCE}: language {name!r} nested inside {'.'.join(where)!r}")
            for subpath, template in _leaves(inner, where + (name,)):
                yield (name,) + subpath, template
    else:
        raise ValueError(f"{_RESOURCE}: {'.'.join(where)!r} must be a string, not {type(value).__name__}")
