"""Realistic replies to numeric (GSM8K-style and arithmetic) questions.

Written for this project. Each entry: (reply, paper answer, robust answer). ``paper`` is Du et
al.'s rule: the last number anywhere. ``robust``: ``\\boxed{}``, then "#### N" / "the answer
is N" / "Answer: N", else a single number on the last line.
"""

from __future__ import annotations

Entry = tuple[str, str | None, str | None]

CORPUS: list[Entry] = [
    # -- the requested format --------------------------------------------------------
    ("3 + 4 * 5 = 23. The answer is 23.", "23", "23"),
    ("The answer is 23", "23", "23"),
    ("#### 23", "23", "23"),
    ("Answer: 23", "23", "23"),
    ("answer = 23", "23", "23"),
    ("The answer is $\\boxed{23}$.", "23", "23"),
    ("\\boxed{23}", "23", "23"),
    ("23", "23", "23"),
    ("The answer is **23**.", "23", "23"),
    ("The answer is: 23", "23", "23"),
    # -- formatting of the number -----------------------------------------------------
    ("The total cost is $1,200. The answer is 1,200.", "1200", "1200"),
    ("The answer is $18.", "18", "18"),
    ("The answer is 18.00", "18", "18"),
    ("The answer is 2.50", "2.5", "2.5"),
    ("The answer is -465.", "-465", "-465"),
    ("The answer is 0.", "0", "0"),
    ("The answer is .5", "0.5", "0.5"),
    ("\\boxed{1,000,000}", "1000000", "1000000"),
    ("\\boxed{-12}", "-12", "-12"),
    ("The answer is 3.14159.", "3.14159", "3.14159"),
    ("#### 72", "72", "72"),
    ("#### 1,234", "1234", "1234"),
    # -- arithmetic expressions with intermediate numbers -------------------------------
    (
        "First 12*24 = 288, then 27 + 288 = 315, 315 + 28 = 343, 13*1 = 13, 343 - 13 = 330. "
        "The answer is 330.",
        "330",
        "330",
    ),
    ("27+12*24+28-13*1 = 27+288+28-13 = 330", "330", None),
    ("Multiplying first: 16*15 = 240 and 29*25 = 725. So 8 + 240 + 12 - 725 = -465.", "-465", None),
    ("Step 1: 16*15 = 240\nStep 2: 29*25 = 725\nStep 3: 8+240+12-725\n-465", "-465", "-465"),
    ("The answer is 330, since 12*24 = 288.", "288", "330"),
    ("I got 330 (after computing 288 and 13).", "13", None),
    ("Result: 330", "330", "330"),
    ("Final result:\n330", "330", "330"),
    # -- several candidate answers ------------------------------------------------------
    ("Agent 1 said 320 and agent 2 said 330. The answer is 330.", "330", "330"),
    ("The answer is 320. Wait, I made an error: the answer is 330.", "330", "330"),
    ("My previous answer of 320 was wrong; I now get 330.", "330", None),
    ("\\boxed{320} was my first thought, but \\boxed{330} is right.", "330", "330"),
    ("The answer is 330, not 320.", "320", "330"),
    ("Either 320 or 330.", "330", None),
    ("330 or 320", "320", None),
    ("#### 330\nThe other agents' 320 is off by ten.", "320", "330"),
    # -- GSM8K-style word problems ----------------------------------------------------
    (
        "Janet's ducks lay 16 eggs. She eats 3 and bakes with 4, so 16 - 3 - 4 = 9 eggs are "
        "sold at $2 each: 9 * 2 = 18. The answer is 18.",
        "18",
        "18",
    ),
    ("She sells 9 eggs for $2 each, making $18 every day.", "18", None),
    ("9 eggs * $2 = $18\n#### 18", "18", "18"),
    ("A robe takes 2 bolts of blue fiber and half that much white fiber: 2 + 1 = 3.\n3", "3", "3"),
    (
        "He bought the house for $80,000 and spent $50,000 on repairs, so the total is "
        "$130,000. The value rose by 150%, to $200,000, so his profit is $70,000.\nThe answer "
        "is 70000.",
        "70000",
        "70000",
    ),
    ("The profit is $70,000.", "70000", "70000"),
    ("Total: 3 sprints * 3 times * 60 m = 540 m per week.\n540 meters", "540", "540"),
    ("The answer is 540 meters.", "540", "540"),
    ("Answer: 540 m", "540", "540"),
    ("**Answer:** 540", "540", "540"),
    # -- refusals and no number --------------------------------------------------------
    ("I cannot solve this without more information.", None, None),
    ("", None, None),
    ("The answer is unclear.", None, None),
    ("The answer is twenty-three.", None, None),
    ("I'm not sure.", None, None),
    ("\\boxed{}", None, None),
    ("\\boxed{x}", None, None),
    # -- numbers hidden in other tokens ------------------------------------------------
    ("Using the 2nd rule, the answer is 42.", "42", "42"),
    ("The answer is 42 (see step 3).", "3", "42"),
    ("In 2023 prices, the answer is 42.", "42", "42"),
    ("The answer is 42!", "42", "42"),
    ("The answer is 4.2e1", "1", "4.2"),
    ("The answer is 42%.", "42", "42"),
    ("The answer is 1/2.", "2", "1"),
]
