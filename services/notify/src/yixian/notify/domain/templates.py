"""Notice templates: zh-CN first, English as the fallback, rendered in a sandbox.

A template that uses a variable its rule does not provide is refused when the templates
are loaded, never discovered as a blank in a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, meta
from jinja2.sandbox import SandboxedEnvironment

from .rules import RULES, Rule

LANGUAGES = ("zh-CN", "en")


class TemplateError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rendered:
    language: str
    subject: str
    body: str


class Templates:
    def __init__(self, folder: Path, rules: tuple[Rule, ...] = RULES) -> None:
        self.env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        self.sources: dict[tuple[str, str], str] = {}
        self.compiled: dict[tuple[str, str], Template] = {}
        for rule in rules:
            found = False
            for language in LANGUAGES:
                path = folder / language / f"{rule.template}.txt"
                if not path.exists():
                    continue
                source = path.read_text()
                used = meta.find_undeclared_variables(self.env.parse(source))
                unknown = sorted(used - rule.variables)
                if unknown:
                    raise TemplateError(
                        f"{path}: uses {unknown}, which rule {rule.reason} does not provide"
                    )
                if not source.startswith("主题：") and not source.startswith("Subject: "):
                    raise TemplateError(
                        f"{path}: the first line is the subject ('主题：' or 'Subject: ')"
                    )
                self.sources[(language, rule.template)] = source
                self.compiled[(language, rule.template)] = self.env.from_string(source)
                found = True
            if not found:
                raise TemplateError(f"no template {rule.template} for rule {rule.reason}")

    def render(self, template: str, context: dict[str, Any], language: str = "zh-CN") -> Rendered:
        for lang in (language, *LANGUAGES):
            compiled = self.compiled.get((lang, template))
            if compiled is not None:
                text = compiled.render(**context).strip()
                subject, _, body = text.partition("\n")
                return Rendered(
                    lang, subject.split("：", 1)[-1].removeprefix("Subject: ").strip(), body.strip()
                )
        raise TemplateError(f"no template {template}")
