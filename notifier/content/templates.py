"""Named, versioned templates per channel, with locale variants and fallback.

Every save of a template is a new immutable version, so a notification can always say which
text it was made from. A version holds one variant per locale; :func:`pick_locale` falls back
from ``fr-CA`` to ``fr`` to the template's default locale. Sources are checked when saved
(Jinja2 syntax, through the same sandboxed environment that renders them), so a broken template
is refused at once, not discovered by a campaign at 09:00 on Monday.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from notifier.content.models import Template, TemplateVersion
from notifier.db.models import DEFAULT_SERVICE_ID, utcnow
from notifier.db.named import get_named
from notifier.errors import ErrorCode, NotifierError, field_error
from notifier.ownership import ALL_SERVICES
from notifier.redaction import REDACTED
from notifier.rendering import Rendered, check_source, render_content
from notifier.storable import require_storable
from providers.interface import Channel

# the fields each channel's template has, and which are required
FIELDS: dict[Channel, tuple[tuple[str, bool], ...]] = {
    Channel.EMAIL: (("subject", True), ("body", True), ("html", False)),
    Channel.SMS: (("body", True),),
    Channel.PUSH: (("title", False), ("body", True), ("data", False)),
}


@dataclass(frozen=True)
class ResolvedTemplate:
    name: str
    channel: Channel
    version: int
    locale: str
    fields: dict[str, Any]


def check_fields(channel: Channel, fields: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The variant's fields, checked: required ones present, sources valid Jinja2."""
    allowed = dict(FIELDS[channel])
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise field_error(
            ErrorCode.VALIDATION_ERROR,
            where,
            f"{channel.value} templates have no field(s) {unknown}; they have {sorted(allowed)}",
        )
    clean: dict[str, Any] = {}
    for name, required in FIELDS[channel]:
        value = fields.get(name)
        if value in (None, "", {}):
            if required:
                raise field_error(
                    ErrorCode.VALIDATION_ERROR, f"{where}.{name}", f"{name} is required"
                )
            continue
        sources = value.values() if name == "data" and isinstance(value, dict) else [value]
        for source in sources:
            if not isinstance(source, str):
                raise field_error(
                    ErrorCode.VALIDATION_ERROR, f"{where}.{name}", f"{name} must be text"
                )
            # the same checks as intake's: syntax, NUL/surrogates, include/extends/import
            require_storable(source, f"{where}.{name}")
            check_source(f"{where}.{name}", source, name == "html")
        clean[name] = value
    return clean


def save_version(
    session: Session,
    name: str,
    channel: Channel,
    default_locale: str,
    variants: Mapping[str, Mapping[str, Any]],
    service_id: str = DEFAULT_SERVICE_ID,
) -> TemplateVersion:
    """Create ``service_id``'s template called ``name`` or add its next version. Names are
    unique within a service only: another service's template of the same name is neither
    touched nor revealed. The channel of a name never changes."""
    if default_locale not in variants:
        raise field_error(
            ErrorCode.VALIDATION_ERROR,
            "locale",
            f"the default locale {default_locale!r} needs its own content",
        )
    checked = {
        locale: check_fields(channel, fields, f"variants.{locale}")
        for locale, fields in variants.items()
    }
    now = utcnow()
    template = _locked(session, service_id, name)
    created = False
    if template is None:
        template, created = _create(session, service_id, name, channel, now)
    if not created:
        if template.channel != channel.value:
            raise NotifierError(
                ErrorCode.CONFLICT,
                f"template {name!r} is a {template.channel} template; "
                f"it cannot become {channel.value}",
            )
        template.latest_version += 1
    template.updated_at = now
    version = TemplateVersion(
        template_id=template.id,
        version=template.latest_version,
        default_locale=default_locale,
        variants=checked,
        created_at=now,
    )
    session.add(version)
    session.flush()
    return version


def _locked(session: Session, service_id: str, name: str) -> Template | None:
    return session.scalars(
        select(Template)
        .where(Template.service_id == service_id, Template.name == name)
        .with_for_update()
    ).first()


def _create(
    session: Session, service_id: str, name: str, channel: Channel, now: datetime
) -> tuple[Template, bool]:
    """The new template, or the one a concurrent save created a moment earlier (the unique key
    refused ours: that save committed first, so this one becomes its next version)."""
    template = Template(
        name=name, channel=channel.value, latest_version=1, created_at=now, service_id=service_id
    )
    try:
        with session.begin_nested():
            session.add(template)
            session.flush()
    except IntegrityError:
        found = _locked(session, service_id, name)
        if found is None:  # the unique key refused a row it cannot show us: not a race
            raise
        return found, False
    return template, True


def get_template(session: Session, name: str, scope: str | None = ALL_SERVICES) -> Template:
    return get_named(session, Template, name, "template", scope)


def get_version(session: Session, template: Template, version: int | None) -> TemplateVersion:
    number = version or template.latest_version
    row = session.scalars(
        select(TemplateVersion).where(
            TemplateVersion.template_id == template.id, TemplateVersion.version == number
        )
    ).first()
    if row is None:
        raise NotifierError(
            ErrorCode.NOT_FOUND, f"template {template.name!r} has no version {number}"
        )
    return row


def versions_of(session: Session, template: Template) -> list[TemplateVersion]:
    return list(
        session.scalars(
            select(TemplateVersion)
            .where(TemplateVersion.template_id == template.id)
            .order_by(TemplateVersion.version)
        )
    )


def pick_locale(available: Mapping[str, Any], wanted: str | None, default: str) -> str:
    """``fr-CA`` -> ``fr-CA``, else ``fr``, else any ``fr-*``, else the default locale."""
    if wanted:
        wanted_lower = wanted.replace("_", "-").lower()
        by_lower = {k.lower(): k for k in available}
        if wanted_lower in by_lower:
            return by_lower[wanted_lower]
        language = wanted_lower.split("-")[0]
        if language in by_lower:
            return by_lower[language]
        for key in sorted(by_lower):
            if key.split("-")[0] == language:
                return by_lower[key]
    return default


def resolve(
    session: Session,
    name: str,
    locale: str | None = None,
    version: int | None = None,
    channel: Channel | None = None,
    scope: str | None = ALL_SERVICES,
) -> ResolvedTemplate:
    template = get_template(session, name, scope)
    if channel is not None and template.channel != channel.value:
        raise field_error(
            ErrorCode.VALIDATION_ERROR,
            "template",
            f"template {name!r} is for {template.channel}, not {channel.value}",
        )
    row = get_version(session, template, version)
    return resolve_version(template, row, locale)


def resolve_version(
    template: Template, row: TemplateVersion, locale: str | None
) -> ResolvedTemplate:
    chosen = pick_locale(row.variants, locale, row.default_locale)
    return ResolvedTemplate(
        name=template.name,
        channel=Channel(template.channel),
        version=row.version,
        locale=chosen,
        fields=dict(row.variants[chosen]),
    )


def render(
    resolved: ResolvedTemplate,
    data: Mapping[str, Any],
    sensitive: frozenset[str] = frozenset(),
    **bounds: Any,
) -> Rendered:
    """Render the variant's fields with ``data``; push ``data`` values are templates too.
    ``bounds`` (``max_chars``, ``pool``, ``timeout``) go to :func:`render_content` unchanged."""
    text_fields = {k: v for k, v in resolved.fields.items() if k != "data"}
    rendered = render_content(text_fields, data, sensitive, **bounds)
    push_data = resolved.fields.get("data")
    if push_data:
        masked = {k: (REDACTED if k in sensitive else v) for k, v in data.items()}
        data_bounds = {k: v for k, v in bounds.items() if k != "max_chars"}
        full = render_content(push_data, data, frozenset(), **data_bounds)
        shown = render_content(push_data, masked, frozenset(), **data_bounds) if sensitive else full
        rendered.content["data"] = full.content
        rendered.redacted["data"] = shown.content
    return rendered
