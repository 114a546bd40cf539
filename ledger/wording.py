"""Words of messages built from values: :func:`article` puts the right indefinite article
before a noun (``a sponsor``, ``an auditor``, ``an Enhancement``, ``a UUID``)."""

from __future__ import annotations

__all__ = ["article"]

# Words that start with a vowel letter but a consonant sound, and the reverse.
_CONSONANT_SOUND = ("uni", "use", "usu", "uti", "eu", "one", "once")
_VOWEL_SOUND = ("hour", "honest", "honour", "honor", "heir")
# Initialisms said letter by letter: these letters' names start with a vowel sound.
_VOWEL_LETTERS = frozenset("AEFHILMNORSX")


def article(noun: str) -> str:
    """``noun`` with its indefinite article: ``f"grants to {article(role)}"``."""
    word = noun.strip()
    if not word:
        return noun
    head = word.split()[0].strip("'\"([")
    lower = head.lower()
    if len(head) > 1 and head.isupper() and head.isalpha():
        vowel = head[0] in _VOWEL_LETTERS
    elif lower.startswith(_VOWEL_SOUND):
        vowel = True
    elif lower.startswith(_CONSONANT_SOUND):
        vowel = False
    else:
        vowel = lower[:1] in ("a", "e", "i", "o", "u")
    return f"{'an' if vowel else 'a'} {noun}"
