"""Article text -> cleaned paragraphs -> sentences, with sentence 0 the headline.

Scraped news text keeps photo captions, link teasers, bylines and sign-offs
between its paragraphs (see seeds/). `clean_lines` drops them and repairs
sentences glued by a missing space; `split_sentences` cuts a paragraph with
compiled regexes and set lookups, fast enough for a corpus
(bench/bench_sentences.py).

Splitting heuristic, in short: a candidate boundary is terminal punctuation
followed by optional closing quotes/brackets and a space. "?", "!" and
ellipses end a sentence unless a lowercase word follows. A period does too,
except after a title (Mr., Gen., Sen.; never a sentence end), before a number
after No./Art./p., and after an ambiguous abbreviation (U.S., Inc., St., an
initial "W."), which ends a sentence only when the next word is a common
sentence starter (The, But, He, In, ...). So "in the U.S. The talks" splits
and "the U.S. President" or "St. Petersburg" does not; "the U.S. Russia says"
stays one sentence, a known miss.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_TYPOGRAPHIC = str.maketrans({
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2039": "'", "\u203a": "'",
    "\u200b": None, "\u2060": None, "\ufeff": None,  # invisible: zero-width space, word joiner, BOM
})


def normalise(text: str) -> str:
    """NFC, straight quotes, whitespace runs (incl. no-break spaces) -> one space, zero-width marks removed."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text).translate(_TYPOGRAPHIC)
    if "''" in text or "``" in text:
        text = text.replace("''", '"').replace("``", '"')
    return " ".join(text.split())


# --- sentence splitting -------------------------------------------------------------

_OPENERS = "\"'([{\u201c\u2018\u00ab"
_CANDIDATE = re.compile(r"([.!?\u2026]+)([\"')\]}\u201d\u2019\u00bb]*) (?=\S)")
_ACRONYM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # U.S, p.m, J.R.R (final period excluded)
_WORD = re.compile(r"[A-Za-z]+")

# Titles and Latin abbreviations: followed by a name or a clause, never a sentence end.
_NEVER_END = frozenset(
    "mr mrs ms messrs dr drs prof gen lt col maj capt cpt sgt cpl adm cmdr brig sen sens rep reps "
    "gov govs pres rev hon amb supt insp det atty fr e.g i.e cf viz vs v".split())
# Abbreviations that may end a sentence: they do when a common sentence starter follows.
_MAYBE_END = frozenset(
    "st mt ft jr sr inc corp ltd co bros plc llc etc al ph.d dept univ ave blvd rd "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split())
# Followed by a number they never end a sentence ("No. 1", "Art. 5", "p. 12").
_BEFORE_NUMBER = frozenset("art arts p pp vol vols fig figs ch chap sec para paras pt nr ver ca approx op ed".split())
_STARTERS = frozenset(
    "A An The This That These Those There Their They He She It Its His Her We Our I You Your "
    "But And Or So Yet Then Thus Still However Meanwhile Moreover Furthermore Also Although "
    "Though While When Where Why What Which Who Whose How If In On At As By For From To With "
    "Without Within Under Over After Before During Since Until Despite Because Now Today "
    "Yesterday Tomorrow Earlier Later Last Next Some Many Most Much More Few Several All Both "
    "Each Every Either Neither No Not None Such Other Another Only Even Instead Indeed "
    "Nevertheless Nonetheless Otherwise Overall Asked According Officials Analysts Experts "
    "Critics Here Is Are Was Were Has Have Had Do Does Did".split())


def split_sentences(paragraph: str) -> list[str]:
    """One paragraph -> sentences (whitespace folded; see the module docstring for the rules)."""
    text = " ".join(paragraph.split())
    sentences: list[str] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        if match.start() > start and _is_boundary(text, match, start):
            sentences.append(text[start:match.end() - 1])
            start = match.end()
    if start < len(text):
        sentences.append(text[start:])
    return sentences


def _is_boundary(text: str, match: re.Match, start: int) -> bool:
    """Whether the punctuation in `match` ends the sentence that began at `start`."""
    pos = match.end()
    while pos < len(text) and text[pos] in _OPENERS:
        pos += 1
    if pos == len(text) or text[pos].islower():
        return False
    if match.group(1) != "." or match.group(2):
        return True  # ? ! ellipsis, or a period inside closing quotes/brackets
    token_start = text.rfind(" ", 0, match.start()) + 1
    token = text[token_start:match.start()].lstrip(_OPENERS)
    if not token:
        return True
    if token.isdigit():  # "points: 1. End ..." is a list item, "in 2022. The" an end
        return not (len(token) <= 2 and (token_start == start or text[token_start - 2] in ":;"))
    return _period_ends(token, text, pos)


def _period_ends(token: str, text: str, pos: int) -> bool:
    """Whether a period after `token` ends the sentence, given the next sentence-ish text at `pos`."""
    low = token.lower()
    if low in _NEVER_END:
        return False
    ambiguous = low in _MAYBE_END or (len(token) == 1 and token.isupper()) or _ACRONYM.fullmatch(token)
    if text[pos].isdigit():
        return not (ambiguous or low in _BEFORE_NUMBER or token in ("No", "Nos"))
    if not ambiguous:
        return True
    word = _WORD.match(text, pos)
    if word is None or word.group() not in _STARTERS:
        return False
    # "J. A. Smith": a single capital followed by a period is another initial, not "A".
    return not (len(word.group()) == 1 and text.startswith(".", word.end()))


# --- cleaning ---------------------------------------------------------------------------

_AGENCY = (r"(?:Getty Images|Agence France-Presse|AFP|Associated Press|AP|Reuters|REUTERS|EPA-EFE|EPA|EFE|"
           r"Sputnik|TASS|Tass|Xinhua|Bloomberg|Shutterstock|Anadolu Agency|Anadolu|AAP|AA|Kremlin|Pool|"
           r"Imago|dpa|picture alliance|ZUMA Press|ZUMA Wire|SOPA Images|LightRocket|NurPhoto|Kyodo|"
           r"Yonhap|Handout|IRNA|Alamy|Redux)")
_NAME = r"[A-Z][\w'.-]*(?: [A-Z][\w'.-]*){0,3}"
# "Pedro Pardo/AFP/Getty Images", "X/Sputnik/Kremlin Pool Photo via AP", "REUTERS/Tingshu Wang";
# it may be glued to the next paragraph ("...Getty ImagesPutin last visited").
_CREDIT = re.compile(
    rf"(?<![\w/])(?:{_NAME}(?:/{_NAME})*?(?:/{_NAME} via {_AGENCY}|/{_AGENCY})|REUTERS/{_NAME})"
    r"(?=$|\s|[A-Z\"'(])")
_CAPTION_MARK = re.compile(  # searched only in lines with a "(", which keeps it cheap
    r"(?:^|\s)\((?:\d(?:st|nd|rd|th) )?(?i:far )?(?:[RLC]|L-R|R-L|(?i:right|left|centre|center|front|back|"
    r"top|bottom|L to R|R to L|left to right|from left|from right))(?:, [^)]{1,30})?\)"
    r"|(?i:\((?:[\w .'-]{0,40} )?archive\)|\((?:file|photo|photos|image|picture|photograph)\b[^)]*\))")
_CAPTION_START = re.compile(
    rf"(?i:(?:photo|photos|photograph|image|picture|photo credit|file photo)\s*:)|\(?{_AGENCY}\)?$")
# a short body line that ends in a photo credit is a caption: "... in Kyiv (Reuters)", "(Pool via AP)",
# "(Photo by AFP)", "Getty Images", "Photo: VCG", "File photo"
_PHOTO_AGENCY = (r"(?:Reuters|REUTERS|AP|AFP|Getty Images|Xinhua|TASS|Tass|Sputnik|EPA-EFE|Anadolu Agency|"
                 r"Bloomberg|Pool|VCG|via AP|via Reuters|via AFP)")
_CREDIT_END = re.compile(
    rf"(?:\((?:(?i:(?:photo|image|picture)s? by |file photo[:,]? ))?(?:[^()]{{0,40}}?[\s/])?{_PHOTO_AGENCY}\)"
    rf"|\((?:AP|AFP|Reuters) Photo/[^()]{{1,40}}\)"
    rf"|\b(?:Getty Images|(?:Photo|Image|Picture)s?: [\w .'/-]{{1,40}}|[Ff]ile [Pp]hoto))\.?$")
_CREDIT_END_MAX_WORDS = 40
# No match of _CREDIT_END is longer than this (tests/unit/test_text.py checks), so it is searched for in the
# end of a line only: searching a whole line from every position was a tenth of the cleaning time.
_CREDIT_END_WIDTH = 70
_TEASER = re.compile(
    r"^(?:read (?:more|also)\b|also read\b|see also\b|related\s*:|watch\s*:|sources?\s*:|don'?t miss\s*:"
    r"|(?:more|latest|live)\s*:|read our\b.{0,80}\blive ?blog\b|[A-Z][A-Z -]{2,40} (?:LATEST|LIVE)$"
    r"|this (?:story|article|report) (?:has been|was) updated\b|this is a (?:developing|breaking) (?:story|news)\b"
    r"|\(?with (?:inputs|additional reporting) from\b"
    r"|(?:reporting|additional reporting|writing|editing|edited|compiled) by\b)", re.I)
_SIGNOFF = re.compile(
    r"^(?:follow\b.{1,80}?\b(?:google news|twitter|x|facebook|instagram|telegram|whatsapp|youtube|"
    r"linkedin|threads)\b|(?:subscribe|sign up)\b.{0,60}\bnewsletter|subscribe to\b|click here\b"
    r"|and be the first to know\b)",
    re.I)
_CONTRIBUTED = re.compile(r"\bcontributed (?:reporting|to (?:this|the) (?:report|story|article))\b", re.I)
_BYLINE_WORD = re.compile(r"(?:[A-Z][\w'.-]*|and|de|van|von|bin|al|el),?")
_TIME_WORD = re.compile(r"[\d:./+-]+(?:am|pm|st|nd|rd|th|h)?")
_MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split())
_TIME_WORDS = _MONTHS | frozenset(
    "updated published posted last first ago a an am pm a.m p.m at on just now yesterday today "
    "second seconds sec secs minute minutes min mins hour hours hr hrs day days week weeks month months "
    "year years gmt utc edt est et cet cest bst pst pdt msk ist jst trt eet eest | - "
    "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thurs fri sat sun".split())
_GLUED = re.compile(r"(?<=[A-Za-z0-9)\]][.!?])(?=[A-Z][a-z])")
# where _GLUED matches, found faster: a pattern that starts with a character is scanned for it, not tried everywhere
_GLUED_PUNCTUATION = re.compile(r"[.!?](?<=[A-Za-z0-9)\]][.!?])(?=[A-Z][a-z])")
_HEADLINE_WINDOW = 5


def clean_lines(text: str, title: str | None = None) -> list[str]:
    """Article text -> cleaned paragraphs, headline first; [] when nothing is left.

    The headline is the line equal to `title` among the first few lines (lines
    before it, typically photo captions, are dropped); otherwise the first line
    that is not boilerplate.
    """
    lines = [line for line in map(normalise, text.splitlines()) if line]
    at = _title_index(lines, title)
    if at is None:
        return _drop_boilerplate(lines)
    return [lines[at]] + _drop_boilerplate(lines[at + 1:])


def _title_index(lines: list[str], title: str | None) -> int | None:
    if not title:
        return None
    wanted = normalise(title).casefold().rstrip(".")
    for index, line in enumerate(lines[:_HEADLINE_WINDOW]):
        if line.casefold().rstrip(".") == wanted:
            return index
    return None


def _drop_boilerplate(lines: list[str]) -> list[str]:
    """Keep article paragraphs; drop captions (and the caption a credited copy repeats), teasers, sign-offs."""
    kept: list[str] = []
    previous, previous_kind = "", "start"
    for line in lines:
        kind = _boilerplate_kind(line)
        if kind is None and previous_kind == "signoff" and line[0].islower():
            kind = "signoff"  # "Follow X on Google News" / "and be the first to know all the news"
        paragraph = "" if kind else _strip_caption(line)
        if kind is None and not paragraph:
            kind = "caption"  # the whole line was a caption ending in a photo credit
        if kind == "caption" and previous_kind is None and len(previous) > 20 and line.startswith(previous):
            kept.pop()  # "X." then "X. (Reuters Archive)": both are the caption
        if paragraph:
            kept.append(_repair_glued(paragraph))
        previous, previous_kind = line, kind
    return kept


def _boilerplate_kind(line: str) -> str | None:
    """'caption', 'teaser', 'signoff', 'byline' or 'timestamp' for a boilerplate line, else None."""
    words = line.split()
    if _CAPTION_START.match(line) or ("(" in line and len(words) <= 60 and _CAPTION_MARK.search(line)) or (
            len(words) <= _CREDIT_END_MAX_WORDS and _credit_at_end(line)):
        return "caption"
    if _TEASER.match(line):
        return "teaser"
    if _SIGNOFF.match(line) and len(words) <= 20:
        return "signoff"
    if _is_byline(line, words):
        return "byline"
    if _is_timestamp(words):
        return "timestamp"
    return None


def _credit_at_end(line: str) -> bool:
    """Whether the line ends in a photo credit (_CREDIT_END); "$" may stand before a final newline."""
    return _CREDIT_END.search(line, max(0, len(line) - _CREDIT_END_WIDTH - 1)) is not None


def _is_byline(line: str, words: list[str]) -> bool:
    if "ontributed" in line and len(words) <= 30 and _CONTRIBUTED.search(line):
        return True
    return (len(words) <= 10 and words[0] == "By" and len(words) > 1
            and all(_BYLINE_WORD.fullmatch(word) for word in words[1:]))


def _is_timestamp(words: list[str]) -> bool:
    """'20 minutes ago', 'Updated 3 hours ago', 'Published 9 April 2024, 10:15 GMT'."""
    if len(words) > 12:
        return False
    tokens = [word.strip(",.:()").lower() for word in words]
    if not all(token in _TIME_WORDS or _TIME_WORD.fullmatch(token) for token in tokens):
        return False
    return any(token == "ago" or token in _MONTHS or token[:1].isdigit() for token in tokens)


def _strip_caption(line: str) -> str:
    """Drop a caption that ends in a photo credit, keeping any paragraph glued after it."""
    while "/" in line and (credit := _CREDIT.search(line)) is not None:
        line = line[credit.end():].strip()
    return line


def _repair_glued(line: str) -> str:
    """'in Beijing.The ministers' -> 'in Beijing. The ministers'; leaves URLs and domains alone."""
    if _GLUED_PUNCTUATION.search(line) is None:
        return line
    return _GLUED.sub(lambda m: "" if _in_address(line, m.start()) else " ", line)


def _in_address(line: str, pos: int) -> bool:
    token = line[line.rfind(" ", 0, pos) + 1:pos]
    return "/" in token or "@" in token or token.lower().startswith("www.")


# --- whole articles ---------------------------------------------------------------------

def article_sentences(text: str, title: str | None = None) -> list[str]:
    """Whole article -> sentences: 0 is the headline (never split), then body sentences in order."""
    paragraphs = clean_lines(text, title)
    if not paragraphs:
        return []
    sentences = [paragraphs[0]]
    for paragraph in paragraphs[1:]:
        sentences.extend(split_sentences(paragraph))
    return sentences


def content_hash(sentences: list[str]) -> str:
    """SHA-256 hex of the sentences joined by newlines, lower-cased and whitespace-folded: article identity."""
    folded = "\n".join(" ".join(sentence.lower().split()) for sentence in sentences)
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()
