"""Realistic MMLU replies with the answer each extraction mode must read from them.

Written for this project. Each entry: (options, reply, paper answer, robust answer). ``paper``
is the reference rule (option text occurring last wins over the last "X)" letter); ``robust``
reads only explicit statements and "(X)". None = unparsed.
"""

from __future__ import annotations

CELL = ["Ribosome", "Mitochondrion", "Golgi apparatus", "Lysosome"]
FRACTIONS = ["1/4", "1/2", "3/4", "1/8"]
PAIRS = ["True, True", "False, False", "True, False", "False, True"]
CODE = ["O(n)", "O(log n)", "O(n log n)", "O(n^2)"]

Entry = tuple[list[str], str, str | None, str | None]

CORPUS: list[Entry] = [
    # -- the requested format, cleanly ---------------------------------------------------
    (CELL, "The mitochondrion is the site of aerobic respiration. The answer is (B).", "B", "B"),
    (CELL, "(B)", "B", "B"),
    (CELL, "Aerobic respiration happens in the inner membrane, so (B)", "B", "B"),
    (CELL, "ATP synthase sits in the inner membrane of that organelle.\n\n(B)", "B", "B"),
    (CELL, "Final answer: (B)", "B", "B"),
    (CELL, "The correct answer is B.", None, "B"),
    (CELL, "Answer: B", None, "B"),
    (CELL, "The answer is **B**.", None, "B"),
    (CELL, "So the answer would be option B.", None, "B"),
    (CELL, "My answer is (D).", "D", "D"),
    (CELL, "The answer is (A) ribosome.", "A", "A"),
    # -- option text restated: the reference's option rule decides ------------------------
    (
        CELL,
        "Ribosomes make proteins and lysosomes digest waste; mitochondria make ATP. (B)",
        "D",
        "B",
    ),
    (CELL, "It is not the Golgi apparatus, which packages proteins. The answer is (B).", "C", "B"),
    (CELL, "B) Mitochondrion", "B", None),
    (CELL, "The mitochondrion, not the lysosome. (B)", "D", "B"),
    (CELL, "Between ribosome and mitochondrion, I pick the mitochondrion (B).", "B", "B"),
    (CELL, "C) Golgi apparatus is wrong; B) Mitochondrion is right.", "B", None),
    (CELL, "I'd say mitochondrion.", "B", None),
    (CELL, "The powerhouse of the cell.", None, None),
    # -- several candidate letters ------------------------------------------------------
    (CELL, "At first I thought (A), but on reflection the answer is (B).", "B", "B"),
    (CELL, "Options (A), (C) and (D) are wrong, so (B).", "B", "B"),
    (CELL, "The answer is (B). Options (C) and (D) can be ruled out.", "D", "B"),
    (CELL, "Agent 1 said (C), agent 2 said (D). I still think the answer is B.", "D", "B"),
    (CELL, "Either (A) or (B); I lean towards (B).", "B", "B"),
    (CELL, "The answer is (B), not (A).", "A", "B"),
    (CELL, "(A) (B) (C) (D)", "D", "D"),
    # -- the reference's "X)" tokens and their quirks ------------------------------------
    (CELL, "The answer is B) because respiration happens there.", "B", "B"),
    (CELL, "I choose (B) (as explained above)", "ABOVE", "B"),
    (CELL, "I choose (B) (because of ATP)", "ATP", "B"),
    (CELL, "I choose (B) (see step 2)", "B", "B"),
    (CELL, "(b)", "B", None),
    (CELL, "the answer is b", None, None),
    (CELL, "The answer is (E).", None, None),
    (CELL, "Step 1) recall the organelles. Step 2) pick the one making ATP: (B)", "B", "B"),
    # -- "combined answer" --------------------------------------------------------------
    (CELL, "Combined answer: (B)", None, "B"),
    (CELL, "Taking everyone's view, the combined answer is (B) mitochondrion.", None, "B"),
    # -- refusals and non-answers -------------------------------------------------------
    (CELL, "I cannot determine the answer from the information given.", None, None),
    (CELL, "", None, None),
    (CELL, "I'm sorry, but I can't help with that.", None, None),
    (CELL, "All four options seem plausible to me.", None, None),
    (CELL, "Could you clarify the question?", None, None),
    # -- numeric options: substrings of one another -------------------------------------
    (FRACTIONS, "A Tt x Tt cross gives 1/4 TT, 1/2 Tt and 1/4 tt. The answer is (A).", "A", "A"),
    (FRACTIONS, "Short plants are tt, which is 1/4 of the offspring. (A)", "A", "A"),
    (FRACTIONS, "The fraction of short plants is 1/4, not 3/4. (A)", "C", "A"),
    (FRACTIONS, "The answer is (A)", "A", "A"),
    (FRACTIONS, "Three quarters are tall, so one quarter is short: (A).", "A", "A"),
    (FRACTIONS, "I computed 1/8 first but the right fraction is 1/4.", "A", None),
    (FRACTIONS, "Final answer: A", None, "A"),
    # -- options with commas -------------------------------------------------------------
    (PAIRS, "Statement 1 is true and statement 2 is false, so True, False. (C)", "C", "C"),
    (PAIRS, "Both statements hold: True, True (A)", "A", "A"),
    (PAIRS, "The answer is (D).", "D", "D"),
    (PAIRS, "Statement 1: False, statement 2: True. Answer: (D)", "D", "D"),
    (PAIRS, "I'd go with False, True.", "D", None),
    # -- options with parentheses of their own ---------------------------------------
    (CODE, "Binary search halves the range each step: O(log n). The answer is (B).", "B", "B"),
    (CODE, "Merge sort runs in O(n log n) time. (C)", "C", "C"),
    (CODE, "The answer is (D) because the nested loops give O(n^2).", "D", "D"),
    (CODE, "A single loop is O(n).", "A", None),
    (CODE, "It is O(n log n), so the answer is C.", "C", "C"),
    # -- verbose, markdown, multi-line --------------------------------------------------
    (
        CELL,
        "**Step 1:** Identify where glycolysis happens (cytoplasm).\n**Step 2:** The Krebs "
        "cycle and the electron transport chain run in the mitochondrion.\n\n**Answer: (B)**",
        "B",
        "B",
    ),
    (
        CELL,
        "Let's examine each option:\n- A) Ribosome: protein synthesis\n- B) Mitochondrion: "
        "ATP\n- C) Golgi apparatus: packaging\n- D) Lysosome: digestion\n\nThe answer is (B).",
        "D",
        "B",
    ),
    (
        CELL,
        "After reviewing the other agents' answers, I agree with them.\n\nFinal Answer: "
        "(B) Mitochondrion",
        "B",
        "B",
    ),
    (CELL, "I maintain my answer: **(B)**", "B", "B"),
    (CELL, "> The answer is (B)\n\nThat's what I said before, and I stand by it.", "B", "B"),
    (CELL, "ANSWER: (B)", "B", "B"),
    (CELL, "The final answer is: B", None, "B"),
    (CELL, "The answer is: (B)", "B", "B"),
    (CELL, "The answer is B, the Mitochondrion.", "B", "B"),
]
