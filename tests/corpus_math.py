"""Realistic MATH replies with what each extraction mode reads and how it grades them.

Written for this project. Each entry: (reply, target, paper answer, paper correct, robust
answer, robust correct). ``paper`` is the reference: the last ``\\boxed{`` found scanning
forward, as it stands (braces and unit strings kept: the reference strips its unit strings
only before the vote and the grading), graded after stripping them, removing braces and
lower-casing, against the target exactly as written. ``robust`` canonicalises the last box
and grades by equivalence.
"""

from __future__ import annotations

Entry = tuple[str, str, str | None, bool, str | None, bool]

CORPUS: list[Entry] = [
    # -- clean answers --------------------------------------------------------------------
    ("The answer is $\\boxed{2}$.", "2", "2", True, "2", True),
    ("\\boxed{978121}", "978121", "978121", True, "978121", True),
    ("So $\\sqrt{64^3} = 8^3 = \\boxed{512}$.", "512", "512", True, "512", True),
    (
        "Squaring, $(1000-11)^2 = 1000000 - 22000 + 121 = \\boxed{978121}$",
        "978121",
        "978121",
        True,
        "978121",
        True,
    ),
    ("Thus there are $\\boxed{ 2 }$ vertical asymptotes.", "2", " 2 ", False, "2", True),
    ("\\[\\boxed{-4}\\]", "-4", "-4", True, "-4", True),
    ("The answer is \\boxed{0}.", "0", "0", True, "0", True),
    # -- LaTeX variants of the same number --------------------------------------------------
    ("The product is $\\boxed{978,121}$.", "978121", "978,121", True, "978121", True),
    ("We get $\\boxed{978{,}121}$.", "978121", "978{,}121", True, "978121", True),
    ("The result is $\\boxed{24.0}$.", "24", "24.0", False, "24", True),
    ("$\\boxed{\\frac{48}{2}}$", "24", "\\frac{48}{2}", False, "24", True),
    ("$\\boxed{\\dfrac{1}{2}}$", "\\frac{1}{2}", "\\dfrac{1}{2}", False, "\\frac{1}{2}", True),
    ("$\\boxed{0.5}$", "\\frac{1}{2}", "0.5", False, "\\frac{1}{2}", True),
    ("$\\boxed{1/2}$", "\\frac{1}{2}", "1/2", False, "\\frac{1}{2}", True),
    ("$\\boxed{\\frac12}$", "\\frac{1}{2}", "\\frac12", False, "\\frac12", True),
    ("$\\boxed{\\tfrac{3}{6}}$", "\\frac{1}{2}", "\\tfrac{3}{6}", False, "\\frac{1}{2}", True),
    (
        "$\\boxed{-\\frac{25}{9}}$",
        "-\\frac{25}{9}",
        "-\\frac{25}{9}",
        False,
        "-\\frac{25}{9}",
        True,
    ),
    (
        "$\\boxed{\\frac{-25}{9}}$",
        "-\\frac{25}{9}",
        "\\frac{-25}{9}",
        False,
        "-\\frac{25}{9}",
        True,
    ),
    ("$\\boxed{3\\sqrt{2}}$", "3\\sqrt{2}", "3\\sqrt{2}", False, "3\\sqrt{2}", True),
    ("$\\boxed{\\sqrt{18}}$", "3\\sqrt{2}", "\\sqrt{18}", False, "\\sqrt{18}", True),
    (
        "$\\boxed{\\frac{\\sqrt{3}}{2}}$",
        "\\frac{\\sqrt3}{2}",
        "\\frac{\\sqrt{3}}{2}",
        False,
        "\\frac{\\sqrt{3}}{2}",
        True,
    ),
    ("$\\boxed{2\\pi}$", "2\\pi", "2\\pi", True, "2\\pi", True),
    ("$\\boxed{\\pi \\cdot 2}$", "2\\pi", "\\pi \\cdot 2", False, "\\pi\\cdot2", True),
    ("$\\boxed{x^2+2x+1}$", "(x+1)^2", "x^2+2x+1", False, "x^2+2x+1", True),
    ("$\\boxed{\\left(1, 2\\right)}$", "(1,2)", "\\left(1, 2\\right)", False, "(1,2)", True),
    ("\\boxed{{12}}", "12", "{12}", True, "12", True),
    ("\\boxed{\\text{12}}", "12", "\\text{12}", False, "\\text{12}", True),
    ("$\\boxed{1.5}$", "\\frac{3}{2}", "1.5", False, "\\frac{3}{2}", True),
    ("$\\boxed{10^{2}}$", "100", "10^{2}", False, "10^{2}", True),
    # -- units and the reference's unit strings -----------------------------------------
    ("The angle is $\\boxed{60^\\circ}$.", "60", "60^\\circ", True, "60", True),
    ("The angle is $\\boxed{60^{\\circ}}$.", "60", "60^{\\circ}", False, "60", True),
    ("It measures $\\boxed{60°}$.", "60", "60°", True, "60", True),
    ("The side is $\\boxed{12 \\text{ cm}}$.", "12", "12 \\text{ cm}", True, "12\\text{cm}", True),
    (
        "The side is $\\boxed{12\\, \\text{cm}}$.",
        "12",
        "12\\, \\text{cm}",
        True,
        "12\\text{cm}",
        True,
    ),
    ("So $\\boxed{x = 7}$.", "7", "x = 7", True, "x=7", True),
    ("Hence $\\boxed{x=7}$.", "7", "x=7", False, "x=7", True),
    (
        "The total is $\\boxed{90 \\text{ degrees}}$.",
        "90",
        "90 \\text{ degrees}",
        False,
        "90\\text{degrees}",
        True,
    ),
    ("Therefore $\\boxed{\\$18}$.", "18", "\\$18", False, "\\$18", True),
    # -- several boxes: the last counts -------------------------------------------------
    (
        "First I got $\\boxed{10}$, but correcting the sign gives $\\boxed{12}$.",
        "12",
        "12",
        True,
        "12",
        True,
    ),
    (
        "Agent 1 answered $\\boxed{13}$ and agent 2 $\\boxed{13}$; I get $\\boxed{2}$.",
        "2",
        "2",
        True,
        "2",
        True,
    ),
    (
        "$\\boxed{2}$ is my answer (the other agents' $\\boxed{13}$ double-counts).",
        "2",
        "13",
        False,
        "13",
        False,
    ),
    ("$\\boxed{\\boxed{5}}$", "5", "\\boxed{5}", False, "5", True),
    (
        "$\\boxed{\\frac{1}{\\boxed{2}}}$",
        "\\frac{1}{2}",
        "\\frac{1}{\\boxed{2}}",
        False,
        "\\frac{1}{{2}}",
        True,
    ),
    # -- nesting and odd braces ------------------------------------------------------
    (
        "$\\boxed{\\frac{(x+3)^{5}}{(x+3)^{11}}}$",
        "\\frac{1}{(x+3)^6}",
        "\\frac{(x+3)^{5}}{(x+3)^{11}}",
        False,
        "\\frac{(x+3)^{5}}{(x+3)^{11}}",
        True,
    ),
    ("$\\boxed{\\{1, 2\\}}$", "\\{1,2\\}", "\\{1, 2\\}", False, "\\{1,2\\}", True),
    ("$\\boxed{12", "12", None, False, None, False),
    ("\\boxed {12}", "12", None, False, None, False),
    ("\\boxed{}", "12", "", False, None, False),
    ("$\\fbox{12}$", "12", None, False, "12", True),
    ("\\boxed{1}{2}", "1", "1", True, "1", True),
    # -- wrong answers ----------------------------------------------------------------
    ("The answer is $\\boxed{3}$.", "2", "3", False, "3", False),
    ("$\\boxed{978122}$", "978121", "978122", False, "978122", False),
    ("$\\boxed{-2}$", "2", "-2", False, "-2", False),
    ("$\\boxed{\\frac{1}{3}}$", "\\frac{1}{2}", "\\frac{1}{3}", False, "\\frac{1}{3}", False),
    ("$\\boxed{0.33}$", "\\frac{1}{3}", "0.33", False, "\\frac{33}{100}", False),
    # -- no box at all ------------------------------------------------------------------
    ("The answer is 2.", "2", None, False, None, False),
    ("Final answer: 978121", "978121", None, False, None, False),
    ("I am unable to solve this problem.", "2", None, False, None, False),
    ("", "2", None, False, None, False),
    ("Put your answer in the form \\boxed{{answer}}.", "2", "{answer}", False, "answer", False),
    (
        "So $y = \\frac{1}{x}$ has one asymptote; with the others there are 2 in total.",
        "2",
        None,
        False,
        None,
        False,
    ),
    # -- verbose replies ----------------------------------------------------------------
    (
        "Let's factor: the numerator and denominator share $(x+1)^4$, and $(x+2)^8/(x+2)^6$ "
        "leaves no pole at $-2$. The remaining poles are $x=-3$ and $x=0$.\n\nTherefore, the "
        "graph has $\\boxed{2}$ vertical asymptotes.",
        "2",
        "2",
        True,
        "2",
        True,
    ),
    (
        "After reviewing the other agents' solutions, I agree with their reasoning.\n\n**Final "
        "Answer:** $\\boxed{512}$",
        "512",
        "512",
        True,
        "512",
        True,
    ),
    (
        "Step 1: $989 = 1000 - 11$.\nStep 2: $(1000-11)^2 = 978121$.\n\nThe answer is "
        "\\boxed{978121}.",
        "978121",
        "978121",
        True,
        "978121",
        True,
    ),
]
