"""Prompt sets: jinja2 templates that turn a case, an agent and its peers into messages.

All templates, built-in or the user's, render in jinja2's sandbox: an experiment file is data
that may come from anyone, and a template must not reach Python internals through it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from societies.errors import ConfigError
from societies.resources import resource_dir
from societies.society.agents import Agent, Judge
from societies.society.patterns import Pattern
from societies.society.questionnaire import Item, Timing
from societies.tasks.base import Case, Task

BUILTIN_SETS = ("default", "machinesom")
#: Longest a single template may take to render (a user's template can loop for hours).
RENDER_SECONDS = 2.0
#: Largest string or list a template's ``*`` may build, and largest ``**`` exponent.
MAX_PRODUCT = 1_000_000
MAX_EXPONENT = 1_000


class _RenderTimeout(Exception):
    pass


class BoundedSandbox(SandboxedEnvironment):
    """The sandbox, with ``*`` and ``**`` bounded: ``"x" * 10**10`` would take 10 GB and
    ``9 ** 10**9`` minutes, both from a one-line template."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
            return left**right
        for seq, n in ((left, right), (right, left)):
            if (
                isinstance(seq, str | list | tuple)
                and isinstance(n, int)
                and len(seq) * n > MAX_PRODUCT
            ):
                raise SecurityError(f"a result longer than {MAX_PRODUCT:,}")
        return left * right


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt a render that takes longer than ``seconds`` (main thread only: elsewhere
    signals cannot be used, and the render is unbounded in time but still sandboxed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _RenderTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True, slots=True)
class Manifest:
    persona: Literal["roleplay", "system"]
    case_roles: bool
    extends: str | None


def _read_manifest(directory: Path) -> dict[str, Any]:
    file = directory / "promptset.yaml"
    if not file.is_file():
        return {}
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError("promptset.yaml must be a mapping", file=str(file))
    return data


class PromptSet:
    """One prompt set. A user's directory may ``extends:`` a built-in set, overriding only the
    templates it contains."""

    def __init__(self, spec: str, base_dir: Path) -> None:
        builtin = resource_dir("prompts")
        if spec in BUILTIN_SETS:
            dirs = [builtin / spec]
        else:
            user = (base_dir / spec).resolve()
            if not user.is_dir():
                raise ConfigError(
                    f"prompt set '{spec}' is neither built in ({', '.join(BUILTIN_SETS)}) "
                    "nor a directory",
                    path="prompts",
                )
            dirs = [user]
            parent = _read_manifest(user).get("extends")
            if parent is not None:
                if parent not in BUILTIN_SETS:
                    raise ConfigError(
                        f"{user}/promptset.yaml: extends: unknown prompt set '{parent}'",
                        path="prompts",
                    )
                dirs.append(builtin / parent)
        raw: dict[str, Any] = {}
        for d in reversed(dirs):
            raw.update(_read_manifest(d))
        persona = raw.get("persona", "system")
        if persona not in ("roleplay", "system"):
            raise ConfigError(f"promptset persona must be roleplay or system, not {persona!r}")
        self.name = spec
        #: A user's own templates render under the time limit (see _render).
        self._timed = spec not in BUILTIN_SETS
        self.manifest = Manifest(persona, bool(raw.get("case_roles", True)), raw.get("extends"))
        self.env = BoundedSandbox(
            loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )
        self._cache: dict[str, jinja2.Template | None] = {}

    @property
    def persona_call(self) -> bool:
        """Whether the persona is a role-play turn the model answers (one call per agent)."""
        return self.manifest.persona == "roleplay"

    def _template(self, name: str) -> jinja2.Template | None:
        if name not in self._cache:
            try:
                self._cache[name] = self.env.get_template(name)
            except jinja2.TemplateNotFound:
                self._cache[name] = None
            except jinja2.TemplateSyntaxError as exc:
                raise _syntax_error(exc) from None
        return self._cache[name]

    def _inline(self, source: str) -> jinja2.Template:
        key = "inline:" + source
        if key not in self._cache:
            try:
                self._cache[key] = self.env.from_string(source)
            except jinja2.TemplateSyntaxError as exc:
                raise _syntax_error(exc) from None
        template = self._cache[key]
        assert template is not None
        return template

    def check(self, task: Task, patterns: Sequence[Pattern]) -> None:
        """Fail at load time, not mid-run, when a template the experiment needs is missing."""
        needed = [f"{task.name}/question.j2"] + [
            f"{task.name}/{p.name}.j2" for p in patterns if p.template is None
        ]
        try:
            for name in needed:
                if self._template(name) is None:
                    raise ConfigError(
                        f"prompt set '{self.name}' has no template {name}", path="prompts"
                    )
            for pattern in patterns:
                if pattern.template is not None:
                    self._inline(pattern.template)
        except jinja2.TemplateSyntaxError as exc:
            where = f"{exc.name}:{exc.lineno}" if exc.name else f"line {exc.lineno}"
            raise ConfigError(f"template {where}: {exc.message}", path="prompts") from None

    def role(self, agent: Agent, task: Task, case: Case) -> str:
        if agent.role:
            return agent.role
        if self.manifest.case_roles:
            return task.case_role(case) or task.expert_role
        return task.expert_role

    def persona(self, agent: Agent, task: Task, case: Case) -> str:
        variables = {
            "role": self.role(agent, task, case),
            "character": agent.trait.character,
            "trait": agent.trait.name,
            "agent": agent.name,
        }
        if agent.trait.persona is not None:
            return self._render(self._inline(agent.trait.persona), variables, timed=True)
        template = self._template(f"persona/{agent.trait.name}.j2") or self._template(
            "persona/default.j2"
        )
        if template is None:
            raise ConfigError(f"prompt set '{self.name}' has no persona/default.j2")
        return self._render(template, variables, timed=self._timed)

    def briefing(self, agent: Agent, task: Task, case: Case) -> str | None:
        """The agent's private briefing for ``case``, or ``None`` when it has none."""
        if agent.briefing is None:
            return None
        return self.render_case(agent.briefing.template, task, case)

    def briefing_answer(self, agent: Agent, task: Task, case: Case) -> str | None:
        """The answer the agent's briefing supports (what the simulated model may answer)."""
        if agent.briefing is None or agent.briefing.answer is None:
            return None
        return self.render_case(agent.briefing.answer, task, case)

    def render_case(
        self, source: str, task: Task, case: Case, extra: Mapping[str, Any] | None = None
    ) -> str:
        """An inline template (a user's: under the time limit) over the case's fields, the
        task's prompt variables and ``extra``."""
        variables = {**case.fields, **task.prompt_vars(case), **(extra or {})}
        return self._render(self._inline(source), variables, timed=True)

    def judge_prompt(
        self, judge: Judge, task: Task, case: Case, replies: Sequence[str], round_index: int
    ) -> str:
        """The judge's one message: the case's question as the agents got it (with the
        judge's role), then every agent's latest reply (``<task>/judge.j2``, else
        ``judge.j2``, or the judge's own template)."""
        agent = judge.agent
        variables = {**task.prompt_vars(case), "role": self.role(agent, task, case)}
        variables = {
            **variables,
            "question": self.question(task, case, variables),
            "replies": list(replies),
            "round": round_index,
            "character": agent.trait.character,
            "trait": agent.trait.name,
        }
        if judge.template is not None:
            return self._render(self._inline(judge.template), variables, timed=True)
        template = self._judge_template(task)
        if template is None:
            raise ConfigError(f"prompt set '{self.name}' has no template judge.j2")
        return self._render(template, variables, timed=self._timed)

    def _judge_template(self, task: Task) -> jinja2.Template | None:
        return self._template(f"{task.name}/judge.j2") or self._template("judge.j2")

    def opening(self, agent: Agent, task: Task, case: Case) -> tuple[str, tuple[str, ...]]:
        """The agent's persona and the user turns before its first question: a briefing goes
        at the end of the persona (``system`` placement) or in a turn of its own (``turn``).
        An agent without a briefing gets exactly the persona and no turn."""
        persona = self.persona(agent, task, case)
        brief = self.briefing(agent, task, case)
        if brief is None or agent.briefing is None:
            return persona, ()
        if agent.briefing.placement == "system":
            return f"{persona}\n\n{brief}", ()
        return persona, (brief,)

    def question(self, task: Task, case: Case, variables: Mapping[str, Any]) -> str:
        template = self._template(f"{task.name}/question.j2")
        assert template is not None, "checked at load time"
        return self._render(template, variables, timed=self._timed)

    def turn(
        self,
        pattern: Pattern,
        task: Task,
        variables: Mapping[str, Any],
        peers: Sequence[str],
        round_index: int,
    ) -> str:
        timed = self._timed
        if pattern.template is not None:
            template, timed = self._inline(pattern.template), True
        else:
            found = self._template(f"{task.name}/{pattern.name}.j2")
            assert found is not None, "checked at load time"
            template = found
        variables = {**variables, "peers": peers, "round": round_index}
        return self._render(template, variables, timed=timed)

    def questionnaire(self, items: Sequence[Item], timing: Timing) -> str:
        """The manipulation check's user turn: ``questionnaire.j2`` of this set, or of the
        default set when this one has none (the study's prompts had no questionnaire)."""
        template = self._template("questionnaire.j2")
        timed = self._timed
        if template is None:
            source = resource_dir("prompts") / "default" / "questionnaire.j2"
            template, timed = self._inline(source.read_text(encoding="utf-8")), False
        return self._render(template, {"items": items, "timing": timing}, timed=timed)

    @staticmethod
    def _render(template: jinja2.Template, variables: Mapping[str, Any], *, timed: bool) -> str:
        """Render; a user's template (``timed``) under the time limit, the built-in sets'
        without it (they are ours, and the timer would cost every call ~10 us)."""
        name = template.name or "(inline)"
        try:
            if not timed:
                return template.render(variables)
            with _time_limit(RENDER_SECONDS):
                return template.render(variables)
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"template {name}: {exc.message}") from None
        except SecurityError as exc:
            raise ConfigError(f"template {name}: unsafe operation refused ({exc})") from None
        except jinja2.TemplateSyntaxError as exc:  # in an included template
            raise _syntax_error(exc) from None
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(
                f"template {name}: includes {exc.name}, which does not exist"
            ) from None
        except _RenderTimeout:
            raise ConfigError(
                f"template {name}: took more than {RENDER_SECONDS:g} s to render"
            ) from None
        except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError,
                RecursionError, MemoryError) as exc:  # fmt: skip
            # A user's template can fail in any way its expressions can.
            raise ConfigError(f"template {name}: {type(exc).__name__}: {exc}") from None

    def trial_render(
        self,
        task: Task,
        case: Case,
        agents: Sequence[Agent],
        patterns: Sequence[Pattern],
        judges: Sequence[Judge] = (),
    ) -> None:
        """Render every template once at load time, so a template that cannot render fails
        before the run directory is touched rather than in the middle of a run."""
        variables = task.prompt_vars(case)
        for agent in agents:
            self.persona(agent, task, case)
            self.question(task, case, {**variables, "role": self.role(agent, task, case)})
        for pattern in patterns:
            self.turn(pattern, task, variables, ("(a peer reply)",), 1)
        for judge in judges:
            self.judge_prompt(judge, task, case, ("(a reply)",), 1)


def _syntax_error(exc: jinja2.TemplateSyntaxError) -> ConfigError:
    where = f"{exc.name}:{exc.lineno}" if exc.name else f"line {exc.lineno}"
    return ConfigError(f"template {where}: {exc.message}", path="prompts")
