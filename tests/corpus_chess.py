"""Realistic chess move-validity replies with the square each extraction mode reads.

Written for this project. The position: after 1. e4 e5 2. Nf3 Nc6, the white bishop on f1
(legal squares a6, b5, c4, d3, e2). Each entry: (reply, paper answer, robust answer).
``paper``: lower-case; after the last "final answer" the last ``[a-h][1-8]`` there (none: no
answer), else the last one anywhere. ``robust``: a square standing alone on the "final answer"
line (or the line after it) right after the marker, else a last line that is just a move
token ("c4", "Bc4", "f1c4").
"""

from __future__ import annotations

GAME = "e2e4 e7e5 g1f3 b8c6 f1"
LEGAL = {"a6", "b5", "c4", "d3", "e2"}

Entry = tuple[str, str | None, str | None]

CORPUS: list[Entry] = [
    # -- the requested format --------------------------------------------------------
    ("The bishop on f1 moves diagonally and e2 is empty.\nFinal answer: e2", "e2", "e2"),
    ("The bishop can go to c4, attacking f7.\nc4", "c4", "c4"),
    ("c4", "c4", "c4"),
    ("Final answer: b5", "b5", "b5"),
    ("FINAL ANSWER: B5", "b5", "b5"),
    ("final answer: d3", "d3", "d3"),
    ("The diagonal f1-a6 is open after e4.\n\nFinal Answer: a6", "a6", "a6"),
    ("The bishop develops to an active square.\nFinal answer: **c4**", "c4", "c4"),
    ("The bishop develops.\nFinal answer: `c4`", "c4", "c4"),
    ("The bishop develops.\nFinal answer:\nc4", "c4", "c4"),
    ("The bishop develops.\nFinal answer: c4.", "c4", "c4"),
    ("The bishop develops.\n\nc4.", "c4", "c4"),
    ("The bishop develops.\n**c4**", "c4", "c4"),
    # -- other squares mentioned in the explanation ---------------------------------------
    ("The bishop on f1 can move to c4 because e2 and d3 are empty.\nFinal answer: c4", "c4", "c4"),
    ("From f1 the bishop passes e2 and d3 to reach c4.\nc4", "c4", "c4"),
    (
        "Moving from f1 to b5 pins the knight on c6.\nFinal answer: b5 (pinning the c6 knight)",
        "c6",
        "b5",
    ),
    ("Final answer: c4, since e2, d3 and c4 are all on the open diagonal.", "c4", "c4"),
    ("Final answer: e2 or d3 both work.", "d3", "e2"),
    ("The knight on c6 is attacked after Bb5.\nFinal answer: b5", "b5", "b5"),
    ("My final answer is d3. Other squares like e2 also work.", "e2", "d3"),
    # -- notation variants ----------------------------------------------------------
    ("Final answer: Bc4", "c4", "c4"),
    ("Final answer: f1c4", "c4", "c4"),
    ("The move is f1c4.\nf1c4", "c4", "c4"),
    ("Bishop to c4.\nBc4", "c4", "c4"),
    ("Final answer: C4", "c4", "c4"),
    ("The bishop goes to C4 along the diagonal.", "c4", None),
    # -- no "final answer": the last line decides (robust) ------------------------------
    ("The bishop on f1 can move to c4.", "c4", None),
    ("I suggest c4.", "c4", None),
    ("c4\nThis develops the bishop toward the center.", "c4", None),
    ("e2 is also possible, but I prefer c4.\n\nc4", "c4", "c4"),
    ("Valid destination: c4", "c4", None),
    ("Answer: c4", "c4", None),
    # -- wrong squares (parsed, scored wrong) ------------------------------------------
    ("The bishop jumps to f3.\nFinal answer: f3", "f3", "f3"),
    ("Final answer: g2", "g2", "g2"),
    ("Final answer: h3", "h3", "h3"),
    ("Final answer: f1", "f1", "f1"),
    ("The bishop moves like a knight.\nFinal answer: e3", "e3", "e3"),
    ("Final answer: a7", "a7", "a7"),
    ("Final answer: b6", "b6", "b6"),
    # -- squares that do not exist ------------------------------------------------------
    ("Final answer: i9", None, None),
    ("Final answer: z0", None, None),
    ("Final answer: c9", None, None),
    ("Final answer: c0 or a5", "a5", None),
    # -- refusals -------------------------------------------------------------------
    ("I am unable to provide a valid destination square based on the given moves.", None, None),
    ("The game sequence contains errors, so no valid move exists.", None, None),
    ("N/A", None, None),
    ("Final answer: none", None, None),
    ("I cannot determine a legal move for the piece on f1 from this notation.", "f1", None),
    ("Final answer: there is no valid move for the piece at f1.", "f1", None),
    ("", None, None),
    # -- "final answer" then more text --------------------------------------------------
    ("Final answer: c4\n\nExplanation: the bishop moves along the a6-f1 diagonal.", "f1", "c4"),
    ("Final answer: c4\nThe other agents suggested e2 and d3, which are also legal.", "d3", "c4"),
    ("Earlier my final answer was e2. Now, reconsidering, the final answer is c4", "c4", "c4"),
    ("In my previous final answer I said g2, which is blocked.\nc4", "c4", "c4"),
    ("Final answer: c4\nFinal answer: d3", "d3", "d3"),
    # -- verbose replies after a debate -------------------------------------------------
    (
        "After checking the other agents' justifications, I agree the bishop on f1 moves along "
        "the light-square diagonal. Since e4 has been played, e2, d3, c4, b5 and a6 are all "
        "open.\n\nFinal answer: c4",
        "c4",
        "c4",
    ),
    (
        "Agent 1 suggested g2, but the pawn on g2 blocks that square. Agent 2's b5 is legal.\n"
        "Final answer: b5",
        "b5",
        "b5",
    ),
    (
        "The piece at f1 is a bishop. After 1. e4 the e2 square is vacant, so Be2 is legal.\n"
        "\nFinal answer: e2",
        "e2",
        "e2",
    ),
    (
        "Let me double check: f1 bishop, diagonal f1-e2-d3-c4-b5-a6, nothing in between.\n"
        "Final answer: a6",
        "a6",
        "a6",
    ),
    ("**Explanation:** the diagonal is open.\n**Final answer:** d3", "d3", "d3"),
    ("Explanation: the light-squared bishop can develop.\n\nFinal answer - c4", "c4", "c4"),
]
