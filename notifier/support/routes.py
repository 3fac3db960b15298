"""The support console's pages under /support (issue 5).

Every page needs a signed-in staff member (``StaffDep`` redirects to /support/login); every
POST checks the form's CSRF token (``FormStaffDep``); admin actions check the role. Reads are
audited in the same transaction that reads the data.

Every read and action is limited to the staff member's service by ``staff.scope``, the scope
of :mod:`notifier.ownership` that API keys have: another service's notification, recipient
history, suppression, campaign or audit entry is answered exactly like one that does not exist
(the same 404 page, the same empty result). A platform admin's scope is every service.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from notifier.api.deps import RuntimeDep
from notifier.db.session import transaction
from notifier.errors import NotifierError
from notifier.statuses import Status
from notifier.support import (
    actions,
    audit,
    campaign_progress,
    forms,
    search,
    service_views,
    signin,
)
from notifier.support.cases import NotificationCase, load_case, recipient_forms, suppressions_of
from notifier.support.models import AuditAction
from notifier.support.search import Criteria, SearchField
from notifier.support.staff import Staff
from notifier.support.web import (
    HERE,
    ConsoleRoute,
    FormStaffDep,
    PageRefused,
    StaffDep,
    audit_refusal,
    render,
    require_admin,
    require_platform_admin,
)
from providers.interface import Channel, Lane

PAGE_SIZE = 50

log = logging.getLogger("notifier.support")
router = APIRouter(prefix="/support", route_class=ConsoleRoute, include_in_schema=False)
router.include_router(signin.router)


@router.get("/static/console.css")
def stylesheet() -> Response:
    return FileResponse(HERE / "static" / "console.css", media_type="text/css")


@router.get("")
def search_page(request: Request, runtime: RuntimeDep, staff: StaffDep) -> Response:
    form = forms.parse(request.query_params, runtime.settings.phone_search_regions)
    cursor = request.query_params.get("cursor") or None
    results, error_status = None, 200
    with transaction(runtime.sessions) as session:
        # a platform admin may narrow a search to one service; anyone else has their own only
        names = service_views.service_names(session, staff.scope) if staff.is_platform_admin else {}
        service = (request.query_params.get("service") or "").strip()[:63]
        chosen = service_views.service_id_named(names, service)
        criteria = dataclasses.replace(form.criteria, service_id=chosen or staff.scope)
        callers = search.known_callers(session, criteria.service_id)
        if form.submitted and not form.errors:
            try:
                results = search.search(session, criteria, cursor, PAGE_SIZE)
            except NotifierError as e:  # a cursor this console did not make
                form.errors.append(e.message)
            else:
                audit.record(
                    session,
                    audit.Actor.of_staff(staff),
                    AuditAction.SEARCH,
                    query=criteria.as_audit_query(),
                    source=audit.Source.of(request),
                    service_id=criteria.service_id,  # the service searched; None: every one
                )
        if form.errors:
            error_status = 422
    log.info(
        "support.search", extra={"staff_id": staff.id, "found": results.total if results else 0}
    )
    return render(
        request,
        "search.html",
        {
            "form": form,
            "results": results,
            "cursor": cursor,
            "callers": callers,
            "fields": list(SearchField),
            "channels": [c.value for c in Channel],
            "lanes": [lane.value for lane in Lane],
            "statuses": [s.value for s in Status],
            "periods": forms.PERIODS,
            "service_names": names,
            "service": service if chosen else "",
        },
        staff=staff,
        status_code=error_status,
    )


@router.get("/notifications/{notification_id}")
def notification_page(
    request: Request, notification_id: str, runtime: RuntimeDep, staff: StaffDep
) -> Response:
    with transaction(runtime.sessions) as session:
        case = load_case(session, notification_id, staff.scope)
        if case is not None:
            audit.record(
                session,
                audit.Actor.of_staff(staff),
                AuditAction.VIEW_NOTIFICATION,
                notification_id=case.notification.id,
                source=audit.Source.of(request),
                service_id=case.notification.service_id,
            )
    if case is None:
        raise PageRefused(
            404, "Not found", f"There is no notification with the id {notification_id}."
        )
    return _case_page(request, staff, case, done=request.query_params.get("done"))


def _case_page(
    request: Request,
    staff: Staff,
    case: NotificationCase,
    *,
    done: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "notification.html",
        {
            "case": case,
            "done": done,
            "error": error,
            "guard": actions.guard_text(case) if case.needs_confirmation else "",
        },
        staff=staff,
        status_code=status_code,
    )


@router.post("/notifications/{notification_id}/resend")
def resend(
    request: Request,
    notification_id: str,
    runtime: RuntimeDep,
    staff: FormStaffDep,
    confirm: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    require_admin(request, runtime, staff, "resend")
    source = audit.Source.of(request)
    try:
        with transaction(runtime.sessions) as session:
            resent = actions.resend(
                session,
                runtime,
                notification_id,
                staff.email,
                confirmed=confirm == "yes",
                reason=reason,
                scope=staff.scope,
            )
            audit.record(
                session,
                audit.Actor.of_staff(staff),
                AuditAction.RESEND,
                notification_id=notification_id,
                query={
                    "new_notification_id": resent.new_id,
                    "reason": reason.strip()[: actions.MAX_REASON],
                    "confirmed": "yes" if resent.guarded else "",
                },
                source=source,
                service_id=resent.service_id,
            )
    except actions.ActionRefused as e:
        audit_refusal(
            request, runtime, staff, "resend", e.message, notification_id=notification_id[:36]
        )
        with transaction(runtime.sessions) as session:
            case = load_case(session, notification_id, staff.scope)
        if case is None:
            raise PageRefused(e.status_code, "Not found", e.message) from e
        return _case_page(
            request, staff, case, error=f"Not resent. {e.message}", status_code=e.status_code
        )
    actions.publish(runtime, resent)
    log.info("support.resend", extra={"staff_id": staff.id, "notification_id": resent.new_id})
    return RedirectResponse(f"/support/notifications/{resent.new_id}?done=resent", status_code=303)


@router.post("/suppressions/{suppression_id}/lift")
def lift_suppression(
    request: Request,
    suppression_id: int,
    runtime: RuntimeDep,
    staff: FormStaffDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form(max_length=2000)] = "/support",
) -> Response:
    require_admin(request, runtime, staff, "lift_suppression")
    back = back if back.startswith("/support") and not back.startswith("//") else "/support"
    try:
        with transaction(runtime.sessions) as session:
            lifted = actions.lift(session, suppression_id, reason, staff.email, staff.scope)
            audit.record(
                session,
                audit.Actor.of_staff(staff),
                AuditAction.LIFT_SUPPRESSION,
                notification_id=lifted.notification_id,
                query={"suppression_id": suppression_id, "reason": reason.strip()},
                source=audit.Source.of(request),
                # a global suppression (a bounce, a STOP) lifted for the staff's own service
                service_id=lifted.service_id or staff.scope,
            )
    except actions.ActionRefused as e:
        audit_refusal(
            request, runtime, staff, "lift_suppression", e.message, suppression_id=suppression_id
        )
        raise PageRefused(e.status_code, "Suppression not lifted", e.message) from e
    log.info(
        "support.suppression.lifted", extra={"staff_id": staff.id, "suppression_id": suppression_id}
    )
    separator = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{separator}done=lifted", status_code=303)


@router.get("/recipient")
def recipient_page(request: Request, runtime: RuntimeDep, staff: StaffDep) -> Response:
    address = (request.query_params.get("address") or "").strip()[:4096]
    cursor = request.query_params.get("cursor") or None
    if not address:
        return RedirectResponse("/support", status_code=303)
    regions = tuple(runtime.settings.phone_search_regions)
    forms_of = recipient_forms(address, regions)
    criteria = Criteria(
        terms=((SearchField.RECIPIENT, address),), regions=regions, service_id=staff.scope
    )
    with transaction(runtime.sessions) as session:
        try:
            results = search.search(session, criteria, cursor, PAGE_SIZE)
        except NotifierError as e:
            raise PageRefused(422, "Bad page link", e.message) from e
        suppressions = suppressions_of(session, None, forms_of, staff.scope)
        audit.record(
            session,
            audit.Actor.of_staff(staff),
            AuditAction.VIEW_RECIPIENT,
            query={"recipient": address},
            source=audit.Source.of(request),
        )
    return render(
        request,
        "recipient.html",
        {
            "address": address,
            "forms_of": forms_of,
            "results": results,
            "cursor": cursor,
            "suppressions": suppressions,
            "done": request.query_params.get("done"),
        },
        staff=staff,
    )


@router.get("/campaigns")
def campaigns_page(request: Request, runtime: RuntimeDep, staff: StaffDep) -> Response:
    """Progress of every campaign's latest run (read-only, every role), within the scope."""
    with transaction(runtime.sessions) as session:
        items = campaign_progress.latest(session, staff.scope)
    return render(request, "campaigns.html", {"items": items, "statuses": Status}, staff=staff)


@router.get("/audit")
def audit_page(request: Request, runtime: RuntimeDep, staff: StaffDep) -> Response:
    require_admin(request, runtime, staff, "view_audit")
    actor = (request.query_params.get("actor") or "").strip()[:320]
    before = request.query_params.get("before")
    before_id = int(before) if before and before.isdigit() else None
    with transaction(runtime.sessions) as session:
        names = service_views.service_names(session, staff.scope)
        service = (request.query_params.get("service") or "").strip()[:63]
        service_id = service_views.service_id_named(names, service)
        rows, next_before = audit.page(
            session,
            scope=staff.scope,
            before_id=before_id,
            actor=actor or None,
            service_id=service_id,
        )
    return render(
        request,
        "audit.html",
        {
            "rows": rows,
            "next_before": next_before,
            "actor": actor,
            "service": service if service_id else "",
            "service_names": names,
        },
        staff=staff,
    )


@router.get("/services")
def services_page(request: Request, runtime: RuntimeDep, staff: StaffDep) -> Response:
    """Today's figures per service (UTC): volume and failures per lane, quota use, providers.
    A platform admin sees every service, anyone else their own."""
    with transaction(runtime.sessions) as session:
        views = service_views.today(session, runtime, staff.scope)
    return render(
        request,
        "services.html",
        {"views": views, "done": request.query_params.get("done")},
        staff=staff,
    )


@router.post("/services")
def create_service(
    request: Request,
    runtime: RuntimeDep,
    staff: FormStaffDep,
    name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """A platform admin creates a service (in trial mode, as ``notifier services create``)."""
    require_platform_admin(request, runtime, staff, "create_service")
    name = name.strip()
    try:
        with transaction(runtime.sessions) as session:
            row = service_views.create(session, runtime, name)
            audit.record(
                session,
                audit.Actor.of_staff(staff),
                AuditAction.CREATE_SERVICE,
                query={"name": row.name},
                source=audit.Source.of(request),
                service_id=row.id,
            )
    except NotifierError as e:
        raise PageRefused(e.http_status, "Service not created", e.message) from e
    log.info("support.service.created", extra={"staff_id": staff.id, "service_id": row.id})
    return RedirectResponse(f"/support/services?done=created#service-{row.name}", status_code=303)


@router.post("/services/{name}/trial")
def set_trial(
    request: Request,
    name: str,
    runtime: RuntimeDep,
    staff: FormStaffDep,
    trial: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """A platform admin lifts a service's trial mode (``off``) or puts it back (``on``)."""
    require_platform_admin(request, runtime, staff, "update_service")
    if trial not in ("on", "off"):
        raise PageRefused(422, "Service not changed", "Say whether trial mode is on or off.")
    try:
        with transaction(runtime.sessions) as session:
            row = service_views.set_trial(session, runtime, name[:63], trial == "on")
            audit.record(
                session,
                audit.Actor.of_staff(staff),
                AuditAction.UPDATE_SERVICE,
                query={"name": row.name, "trial": trial},
                source=audit.Source.of(request),
                service_id=row.id,
            )
    except NotifierError as e:
        raise PageRefused(e.http_status, "Service not changed", e.message) from e
    return RedirectResponse(f"/support/services?done=updated#service-{row.name}", status_code=303)


@router.api_route("/{unknown:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_a_console_page(request: Request, unknown: str) -> Response:
    """Last route: an unknown path under /support is a console page, not the API's JSON 404."""
    raise PageRefused(404, "Page not found", f"There is no console page at {request.url.path}.")
