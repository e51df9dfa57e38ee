"""Retention policy templates for self-hosted open-source CRMs, shipped with the package: each a
retention file to adapt (its data source and periods), derived from the CRM's own schema
definitions, which its header cites."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources

from auditor.core.errors import InvalidInputError
from auditor.core.yamlsource import parse_yaml
from auditor.retention.policy import RetentionPolicy, parse_retention

DESCRIPTIONS = {
    "civicrm": "CiviCRM: individuals anonymised, contacts in the trash deleted, with their "
    "e-mails, phones, addresses and notes",
    "espocrm": "EspoCRM: leads deleted, contacts anonymised, with their stream, e-mail "
    "addresses and phone numbers",
    "odoo": "Odoo CRM (PostgreSQL): leads deleted with their chatter, archived contacts "
    "anonymised, lead attachments reported",
    "suitecrm": "SuiteCRM 7: leads deleted, contacts anonymised, with their change log and "
    "e-mail addresses",
}
"""Every shipped template by name, with what it covers."""


@dataclass(frozen=True, slots=True)
class Template:
    """One shipped template: its name, what it covers, and its text."""

    name: str
    description: str
    text: str

    @property
    def filename(self) -> str:
        return f"{self.name}.yaml"


class UnknownTemplateError(LookupError):
    """No template has that name; the message suggests the closest and lists them all."""

    def __init__(self, name: str) -> None:
        self.name = name
        close = difflib.get_close_matches(name.lower(), sorted(DESCRIPTIONS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listed = ", ".join(sorted(DESCRIPTIONS))
        super().__init__(f"no retention template {name!r}{hint} (templates: {listed})")


def template_names() -> list[str]:
    """The names of the shipped templates, sorted."""
    return sorted(DESCRIPTIONS)


def template(name: str) -> Template:
    """The shipped template called `name`.

    Raises:
        UnknownTemplateError: there is none.
    """
    if name not in DESCRIPTIONS:
        raise UnknownTemplateError(name)
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return Template(name, DESCRIPTIONS[name], text)


def template_policies(name: str) -> list[RetentionPolicy]:
    """The policies of a shipped template, validated as any retention file is.

    Raises:
        UnknownTemplateError: there is no such template.
        InvalidInputError: it is not a valid retention file (a packaging fault).
    """
    shipped = template(name)
    policies, issues = parse_retention(parse_yaml(shipped.text, shipped.filename))
    if issues:
        raise InvalidInputError(issues)
    return policies


def shipped_files() -> list[str]:
    """The names of the template files in the package (without `.yaml`), sorted: the tests check
    that they are the described ones."""
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".yaml")
    )
