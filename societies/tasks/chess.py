"""Chess move validity (BIG-bench ``chess_state_tracking``): name a legal destination square.

A case is a game in UCI moves followed by a square; any square the piece standing there may
legally move to is correct. The legal set is computed with python-chess by replaying the
moves, so scoring never depends on a hand-written target list; ``paper`` mode scores against
the dataset's list as the study did (on the study's 50 items the two agree).

Layouts: BIG-bench JSON (``{"examples": [{"input": ..., "target": [...]}]}``) and JSONL rows
``{id, input, piece_square?, target?}`` whose ``input`` ends with the square.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from random import Random
from typing import Any

import chess

from societies.errors import DataError
from societies.tasks.base import Case, case_pick, register_task
from societies.tasks.extract import paper_chess, robust_chess
from societies.tasks.rows import Row, RowTask, field

SQUARES = tuple(chess.SQUARE_NAMES)
_PIECE_NAMES = {
    chess.PAWN: "pawn",
    chess.KNIGHT: "knight",
    chess.BISHOP: "bishop",
    chess.ROOK: "rook",
    chess.QUEEN: "queen",
    chess.KING: "king",
}


class IllegalGameError(ValueError):
    """The move list cannot be replayed, or the named square has nothing that can move."""


def split_input(text: str) -> tuple[list[str], str]:
    """``"e2e4 e7e5 g1"`` -> (moves, square)."""
    tokens = text.split()
    if not tokens:
        raise IllegalGameError("empty input")
    return tokens[:-1], tokens[-1].lower()


@lru_cache(maxsize=4096)
def legal_squares(moves: tuple[str, ...], square: str) -> frozenset[str]:
    """Destination squares of the piece on ``square`` after ``moves`` (UCI), by python-chess."""
    board = chess.Board()
    for number, uci in enumerate(moves, start=1):
        try:
            board.push(board.parse_uci(uci))
        except ValueError:
            raise IllegalGameError(f"move {number} '{uci}' is not legal here") from None
    try:
        origin = chess.parse_square(square)
    except ValueError:
        raise IllegalGameError(f"'{square}' is not a square") from None
    piece = board.piece_at(origin)
    if piece is None:
        raise IllegalGameError(f"no piece on {square}")
    if piece.color != board.turn:
        raise IllegalGameError(f"the piece on {square} does not belong to the side to move")
    found = frozenset(
        chess.square_name(m.to_square) for m in board.legal_moves if m.from_square == origin
    )
    if not found:
        raise IllegalGameError(f"the piece on {square} has no legal move")
    return found


@lru_cache(maxsize=4096)
def piece_name(moves: tuple[str, ...], square: str) -> str:
    """The piece on ``square`` after ``moves``. Cached: the simulated model names it in every
    reply, and replaying the game each time was two thirds of a simulated chess run's CPU."""
    board = chess.Board()
    for uci in moves:
        board.push_uci(uci)
    piece = board.piece_at(chess.parse_square(square))
    return "piece" if piece is None else _PIECE_NAMES[piece.piece_type]


def _moves_and_square(fields: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    moves, last = split_input(str(fields["input"]))
    square = str(fields.get("piece_square") or last).lower()
    return tuple(moves), square


@register_task
class ChessTask(RowTask):
    name = "chess"
    expert_role = "an expert skilled in playing chess"

    def check_row(self, where: str, row: Row) -> Row:
        text = field(where, row, "input", str)
        moves, last = split_input(text)
        square = row.get("piece_square", last)
        if not isinstance(square, str) or square.lower() != last:
            raise DataError(
                f"{where}: piece_square: {square!r} is not the last token of input ({last!r})"
            )
        try:
            legal = legal_squares(tuple(moves), last)
        except IllegalGameError as exc:
            raise DataError(f"{where}: input: {exc}") from None
        target = row.get("target")
        if target is not None and not (
            isinstance(target, list) and all(isinstance(t, str) for t in target)
        ):
            raise DataError(f"{where}: target: expected a list of squares")
        out = dict(row, piece_square=last)
        if target is None:
            out["target"] = sorted(legal)
        return out

    def target_of(self, fields: Mapping[str, Any]) -> Any:
        if self.extraction == "paper":
            return frozenset(str(t).lower() for t in fields["target"])
        return legal_squares(*_moves_and_square(fields))

    def notes(self, case: Case) -> list[str]:
        """The dataset's target list against python-chess: the issue asks that any
        disagreement be reported."""
        legal = legal_squares(*_moves_and_square(case.fields))
        listed = {str(t).lower() for t in case.fields["target"]}
        if listed == legal:
            return []
        missing = ", ".join(sorted(legal - listed)) or "-"
        extra = ", ".join(sorted(listed - legal)) or "-"
        return [f"{case.id}: target list differs from python-chess (legal but not listed: "
                f"{missing}; listed but not legal: {extra})"]  # fmt: skip

    def prompt_vars(self, case: Case) -> dict[str, Any]:
        moves, square = _moves_and_square(case.fields)
        return {
            "game": str(case.fields["input"]),
            "moves": " ".join(moves),
            "square": square,
        }

    def parse(self, reply: str) -> str | None:
        if self.extraction == "paper":
            return paper_chess(reply)
        return robust_chess(reply)

    def score(self, answer: str | None, case: Case) -> bool:
        return answer is not None and answer in case.target

    def right_answer(self, case: Case) -> str | None:
        return case_pick(case, sorted(case.target))

    def wrong_answer(self, case: Case) -> str | None:
        square = _moves_and_square(case.fields)[1]
        return case_pick(case, [s for s in SQUARES if s not in case.target and s != square])

    def answer_options(self, case: Case) -> list[str] | None:
        return list(SQUARES)

    def answer_reply(self, case: Case, answer: str) -> str | None:
        return f"I traced the piece's lines of movement.\nFinal answer: {answer}"

    def sim_answer(self, case: Case, correct: bool, rng: Random) -> str:
        legal = sorted(case.target)
        if correct:
            return str(rng.choice(legal))
        square = _moves_and_square(case.fields)[1]
        return str(rng.choice([s for s in SQUARES if s not in case.target and s != square]))

    def sim_reply(self, case: Case, answer: str | None, rng: Random) -> str:
        moves, square = _moves_and_square(case.fields)
        piece = piece_name(moves, square)
        if answer is None:
            return f"The {piece} looks blocked in this position and I cannot name a safe move."
        reason = rng.choice(
            (
                f"The {piece} on {square} can reach {answer} without passing through a piece.",
                f"Moving the {piece} from {square} to {answer} keeps the king out of check.",
                f"{answer} is along the {piece}'s line of movement and is not occupied by "
                "a friendly piece.",
            )
        )
        return f"{reason}\nFinal answer: {answer}"


def generate_games(n: int, seed: int, min_plies: int = 8, max_plies: int = 40) -> list[Row]:
    """``n`` random legal games, each ending with the square of a piece of the side to move
    that has a legal move; questions in the study's layout. Seeded and deterministic."""
    rng = Random(seed)
    rows: list[Row] = []
    while len(rows) < n:
        board = chess.Board()
        moves: list[str] = []
        for _ in range(rng.randint(min_plies, max_plies)):
            legal = sorted(m.uci() for m in board.legal_moves)
            if not legal:
                break
            move = rng.choice(legal)
            board.push_uci(move)
            moves.append(move)
        origins = sorted(
            {chess.square_name(m.from_square) for m in board.legal_moves}, key=SQUARES.index
        )
        if board.is_game_over() or not origins:
            continue
        square = rng.choice(origins)
        target = sorted(legal_squares(tuple(moves), square))
        rows.append(
            {
                "id": f"chess-gen-{len(rows)}",
                "input": " ".join([*moves, square]),
                "piece_square": square,
                "target": target,
            }
        )
    return rows
