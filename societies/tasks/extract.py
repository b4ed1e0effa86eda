"""Answer extraction shared by the tasks: hand-written scanners that run in linear time.

Replies come from models and may be anything: megabytes of text, braces nested thousands deep,
no answer at all. Every function here makes a bounded number of passes over its input and uses
no regular expression that can backtrack, so a hostile reply costs time proportional to its
length and never a recursion. The reference study's rules (``paper`` mode) are reproduced
from its ``src/evaluate.py``; where they behave oddly, the oddity is kept and said.
"""

from __future__ import annotations

import re

# -- boxed answers -------------------------------------------------------------------------


def boxed_contents(text: str, commands: tuple[str, ...] = ("\\boxed",)) -> list[str]:
    """The contents of every ``\\boxed{...}`` (or other command) with balanced braces, in the
    order they close (a box inside another comes before it); a box left open yields nothing.

    One left-to-right pass with a stack of open boxes, so a box inside another is found too and
    nesting depth costs nothing extra.
    """
    found: list[str] = []
    openers = [c + "{" for c in commands]
    depth = 0
    #: For every open box: (brace depth inside which it closes, start of its content).
    boxes: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            for opener in openers:
                if text.startswith(opener, i):
                    boxes.append((depth, i + len(opener)))
                    depth += 1
                    i += len(opener)
                    break
            else:
                i += 2  # an escaped character (\{ or \}) is not a brace
            continue
        if ch == "{":
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if boxes and boxes[-1][0] == depth:
                found.append(text[boxes.pop()[1] : i])
        i += 1
    return found


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{}`` or ``\\fbox{}`` to close (the outer one when
    boxes nest), or None."""
    contents = boxed_contents(text, ("\\boxed", "\\fbox"))
    return contents[-1] if contents else None


def paper_boxed(text: str) -> str | None:
    """The reference's MATH extraction: the last ``\\boxed{`` found scanning forward.

    It finds the first ``\\boxed{``, reads to the brace that closes it (counting every ``{``
    and ``}``, escaped or not), then looks for the next ``\\boxed{`` *after that brace*: a box
    nested inside another is therefore never reported on its own. A box never closed gives
    nothing. ``\\boxed{}`` gives the empty string.
    """
    flag = "\\boxed{"
    results: list[str] = []
    idx = text.find(flag)
    while idx != -1:
        start = idx + len(flag)
        depth = 0
        j = start
        closed = -1
        while j < len(text):
            ch = text[j]
            if ch == "{":
                depth += 1
            elif ch == "}":
                if depth == 0:
                    closed = j
                    break
                depth -= 1
            j += 1
        if closed == -1:
            break
        results.append(text[start:closed])
        idx = text.find(flag, closed)
    return results[-1] if results else None


# -- MMLU, reference rules -----------------------------------------------------------------


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def paper_paren_tokens(text: str) -> list[str]:
    """What the reference's ``re.findall(r"\\((\\w+)\\)|(\\w+)\\)", text)`` returns, in linear time.

    That pattern backtracks quadratically on a long run of word characters; its matches are
    exactly the maximal runs of word characters followed by ``)``, with or without ``(``.
    """
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if _is_word(text[i]):
            j = i
            while j < n and _is_word(text[j]):
                j += 1
            if j < n and text[j] == ")":
                tokens.append(text[i:j])
            i = j
        else:
            i += 1
    return tokens


def paper_mmlu(text: str, options: list[str]) -> str | None:
    """The reference's MMLU rule.

    1. A reply containing "combined answer" (any case) commits to nothing.
    2. Scanning the ``X)``-style tokens from the end, the first whose upper-case form sorts
       between "A" and "D" — a *string* comparison, so a word such as "(because)" passes as
       "BECAUSE" and becomes the answer (scored wrong); kept as the reference behaves.
    3. Separately, the option whose (stripped, lower-cased) text occurs last in the lower-cased
       reply; on a tie of positions the earlier option. An empty option matches at the end.
    4. If both exist and disagree, the option text wins.
    """
    lowered = text.lower()
    if "combined answer" in lowered:
        return None
    by_letter = None
    for token in reversed(paper_paren_tokens(text)):
        upper = token.upper()
        if "A" <= upper <= "D":
            by_letter = upper
            break
    positions = [lowered.rfind(option.lower().strip()) for option in options]
    by_option = None
    if positions and max(positions) >= 0:
        by_option = "ABCD"[positions.index(max(positions))]
    return by_option if by_option is not None else by_letter


# -- MMLU, robust rules --------------------------------------------------------------------

_STATED = re.compile(
    r"(?:final answer|correct answer|answer)(?: is| would be| should be)?[ \t]*(?:[:=][ \t]*)?"
    r"(?:\*\*)?(?:option |choice )?\(?((?-i:[A-D]))\)?(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def robust_mmlu(text: str) -> str | None:
    """The last explicit statement ("the answer is (B)", "Final answer: C"), else the last
    ``(X)`` with a capital letter A-D; a reply that never commits gives None.

    Both patterns have a fixed literal prefix and bounded optional parts, so matching is
    linear. Unlike the reference, option text restated in the reasoning is never an answer.
    """
    stated = _STATED.findall(text)
    if stated:
        return str(stated[-1]).upper()
    last = None
    i = text.find("(")
    while i != -1:
        if i + 2 < len(text) and text[i + 1] in "ABCD" and text[i + 2] == ")":
            last = text[i + 1]
        i = text.find("(", i + 1)
    return last


# -- chess -------------------------------------------------------------------------------

_SQUARE = re.compile(r"[a-h][1-8]")


def paper_chess(text: str) -> str | None:
    """The reference's chess rule: lower-case the reply; if it says "final answer", the last
    ``[a-h][1-8]`` after its last occurrence, and no answer when there is none there (no
    fallback); otherwise the last ``[a-h][1-8]`` anywhere."""
    lowered = text.lower()
    pos = lowered.rfind("final answer")
    region = lowered if pos == -1 else lowered[pos + len("final answer") :]
    found = _SQUARE.findall(region)
    return str(found[-1]) if found else None


#: A square as a move's destination: "c4", "Bc4", "Bxc4", "f1c4", "e7e8q", "Nf3+".
_MOVE_TOKEN = re.compile(
    r"(?:[a-h][1-8][-x]?(?=[a-h][1-8])|[kqrbn]x?|x)?([a-h][1-8])(?:=?[qrbn])?[+#]?(?![a-z0-9])"
)
_SEPARATORS = frozenset(" \t*:`'\"-–—=>")
_LINKING_WORDS = ("is ", "was ", "would be ", "will be ")
_DECORATION = "*`'\".:;!()[]<> \t"


def _square_after(lowered: str, i: int) -> str | None:
    """The square a "final answer" marker ending at ``i`` commits to: after separators,
    "is"/"was", and at most one line break, a move token must follow at once."""
    n = len(lowered)
    newline_seen = False
    while i < n:
        ch = lowered[i]
        if ch in _SEPARATORS:
            i += 1
        elif ch == "\n" and not newline_seen:
            newline_seen = True
            i += 1
        else:
            for word in _LINKING_WORDS:
                if lowered.startswith(word, i):
                    i += len(word)
                    break
            else:
                break
    found = _MOVE_TOKEN.match(lowered, i)
    return str(found.group(1)) if found else None


def robust_chess(text: str) -> str | None:
    """The square right after the last "final answer" that is followed by one ("Final answer:
    c4", "my final answer is **Bc4**", "final answer:\\n f1c4"); else the last non-empty line
    when it is nothing but a move token. Squares merely mentioned in the reasoning never count.
    """
    lowered = text.lower()
    marker = "final answer"
    pos = lowered.rfind(marker)
    while pos != -1:
        square = _square_after(lowered, pos + len(marker))
        if square is not None:
            return square
        pos = lowered.rfind(marker, 0, pos)
    end = len(lowered)
    while end > 0:
        start = lowered.rfind("\n", 0, end) + 1
        line = lowered[start:end].strip(_DECORATION)
        if line:
            found = _MOVE_TOKEN.fullmatch(line)
            return str(found.group(1)) if found else None
        end = start - 1
    return None
