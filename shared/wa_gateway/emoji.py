"""What counts as one emoji for a reaction.

WhatsApp shows one emoji per reaction. The rule, on code points (no table of every emoji, so
new emoji of the same kinds pass):

* an **element** is one of
  * a pictograph: U+00A9, U+00AE, U+203C, U+2049, U+2122, U+2139, U+2194-U+2199,
    U+21A9-U+21AA, U+231A-U+231B, U+2328, U+23CF, U+23E9-U+23F3, U+23F8-U+23FA, U+24C2,
    U+25AA-U+25AB, U+25B6, U+25C0, U+25FB-U+25FE, U+2600-U+27BF, U+2934-U+2935,
    U+2B05-U+2B07, U+2B1B-U+2B1C, U+2B50, U+2B55, U+3030, U+303D, U+3297, U+3299, and
    U+1F000-U+1FAFF but the regional indicators and skin tones; then, each optional and in this
    order, U+FE0F (emoji presentation), a skin tone (U+1F3FB-U+1F3FF) and a tag sequence
    (U+E0020-U+E007E, ended by U+E007F: a subdivision flag such as England's);
  * a keycap: ``0``-``9``, ``#`` or ``*``, an optional U+FE0F, then U+20E3;
  * a flag: two regional indicators (U+1F1E6-U+1F1FF);
* an emoji is one element, or several joined by U+200D (a ZWJ sequence, such as a family), in
  at most 64 bytes of UTF-8.

Anything else is not one emoji: text (``"ok"``), two emoji side by side (``"👍👍"``), a skin tone
alone, a lone regional indicator. ``""`` is not an emoji either: it takes a reaction back.
"""

from __future__ import annotations

import re

MAX_BYTES = 64

_PICTOGRAPH = (
    "[\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328\u23cf"
    "\u23e9-\u23f3\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u27bf"
    "\u2934\u2935\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55\u3030\u303d\u3297\u3299"
    "\U0001f000-\U0001f1e5\U0001f200-\U0001f3fa\U0001f400-\U0001faff]"
)
_ELEMENT = (
    f"(?:{_PICTOGRAPH}\ufe0f?[\U0001f3fb-\U0001f3ff]?(?:[\U000e0020-\U000e007e]+\U000e007f)?"
    "|[0-9#*]\ufe0f?\u20e3"
    "|[\U0001f1e6-\U0001f1ff]{2})"
)
_EMOJI = re.compile(f"{_ELEMENT}(?:\u200d{_ELEMENT})*")


def is_emoji(value: str) -> bool:
    """True when ``value`` is one emoji by the module's rule."""
    return len(value.encode("utf-8", "surrogatepass")) <= MAX_BYTES and bool(
        _EMOJI.fullmatch(value)
    )
