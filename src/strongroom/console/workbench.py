"""My access (roles, the execution role's effective permissions, the policy simulator), data
(buckets, objects, versions, download), jobs (list, detail, log tail), endpoints and audit."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from strongroom.audit.log import AuditFilter
from strongroom.console import web
from strongroom.console.catalog import teams_of
from strongroom.console.graph_layout import graph_href
from strongroom.console.lineage import recorded_versions
from strongroom.core.errors import InvalidInput, StrongroomError
from strongroom.core.names import check_name
from strongroom.jobs.models import TERMINAL
from strongroom.jobs.tracking import JobTracking
from strongroom.policy.engine import Target
from strongroom.serving.models import EndpointSpec

LOG_TAIL = 200


@web.page
async def access(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    team_roles = [str(g) for g in who.session.held if g.team]
    chosen = request.query_params.get("role") or (team_roles[0] if team_roles else "")
    simulate = {k: request.query_params.get(k, "") for k in ("principal", "action", "resource", "acting_as")}

    def view() -> tuple[list[Any], Any, StrongroomError | None]:
        permissions: list[Any] = []
        result, refused = None, None
        with web.viewing(request, who, "access", role=chosen):
            if chosen:
                permissions = platform.policies.role_permissions(who.ctx, chosen)
            if simulate["action"]:
                try:
                    result = platform.policies.simulate(
                        who.ctx,
                        simulate["principal"] or who.user,
                        simulate["action"],
                        simulate["resource"],
                        acting_as=simulate["acting_as"] or None,
                    )
                except StrongroomError as error:  # the simulator's own denial is in this page's event
                    refused = error
        return permissions, result, refused

    permissions, result, refused = await web.run(view)
    return web.render(
        request,
        "access.html",
        who=who,
        team_roles=team_roles,
        chosen=chosen,
        permissions=permissions,
        simulate=simulate,
        result=result,
        refused=refused,
    )


@web.page
async def data(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)

    def view() -> web.Pager:
        with web.viewing(request, who, "data"):
            return web.paginate(platform.storage.list_buckets(who.ctx), number)

    buckets = await web.run(view)
    return web.render(request, "data.html", who=who, buckets=buckets)


@web.page
async def bucket(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    name = check_name(request.path_params["bucket"], "bucket")
    prefix = request.query_params.get("prefix", "")
    after = request.query_params.get("after") or None

    def view() -> Any:
        with web.viewing(request, who, "bucket", bucket=name, prefix=prefix):
            return platform.storage.list_objects(
                who.ctx, name, prefix=prefix, delimiter="/", max_keys=web.PAGE_SIZE, page_token=after
            )

    listing = await web.run(view)
    return web.render(request, "bucket.html", who=who, listing=listing, prefix=prefix)


@web.page
async def versions(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    name = check_name(request.path_params["bucket"], "bucket")
    key = request.query_params.get("key", "")
    if not key:
        raise InvalidInput("give the object's key", field="key")

    def view() -> tuple[Any, dict[str, str]]:
        with web.viewing(request, who, "versions", bucket=name, key=key):
            listing = platform.storage.list_versions(who.ctx, name, prefix=key, max_keys=web.PAGE_SIZE)
            found = [v for v in listing.versions if v.key == key]
            team = platform.storage.describe_bucket(who.ctx, name).team if found else ""
            return found, recorded_versions(platform, who, team, found[0].uri) if found else {}

    found, lineage = await web.run(view)
    return web.render(request, "versions.html", who=who, bucket=name, key=key, versions=found, lineage=lineage)


async def upload(request: Request) -> Response:
    """Store the request body as a new version of ``?key=`` (tags from ``X-Sr-Tags``, urlencoded);
    answers the version id as text. The console's script sends it with a progress bar."""
    try:
        web.same_origin(request)
        who = await web.caller(request)
        web.check_csrf(request, web.Form({}), who.session.csrf)
        platform = web.platform_of(request)
        name = check_name(request.path_params["bucket"], "bucket")
        key = request.query_params.get("key", "")
        raw_tags = request.headers.get("x-sr-tags", "")
        tags = dict(urllib.parse.parse_qsl(raw_tags, keep_blank_values=True, max_num_fields=50))
        body = await request.body()  # at most max_request_bytes: larger files go through the CLI or SDK
        version = await web.run(lambda: platform.storage.put_object(who.ctx, name, key, [body], tags=tags or None))
    except StrongroomError as error:
        return web.secured(Response(error.detail, status_code=error.status, media_type="text/plain"))
    return web.secured(Response(version.version_id, media_type="text/plain"))


@web.page
async def download(request: Request) -> Response:
    """Download a version (decrypted on the fly by the storage service), as an attachment."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    name = check_name(request.path_params["bucket"], "bucket")
    key = request.query_params.get("key", "")
    version = request.query_params.get("version_id") or None
    stream = await web.run(lambda: platform.storage.open_object(who.ctx, name, key, version_id=version))
    filename = key.rsplit("/", 1)[-1] or "object"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:128]
    response = StreamingResponse(
        stream.chunks,
        media_type="application/octet-stream",
        headers={"content-length": str(stream.length), "content-disposition": f'attachment; filename="{safe}"'},
    )
    return web.secured(response)


@web.page
async def jobs(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)

    def view() -> tuple[web.Pager, list[str]]:
        with web.viewing(request, who, "jobs"):
            return web.paginate_teams(
                teams_of(platform, who),
                lambda team: platform.jobs.count(who.ctx, team),
                lambda team, offset, limit: platform.jobs.list(who.ctx, team, limit=limit, offset=offset),
                lambda job: job.created_at,
                number,
            )

    listed, refused = await web.run(view)
    return web.render(request, "jobs.html", who=who, jobs=listed, refused=refused)


@web.page
async def job(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = check_name(request.path_params["team"], "team"), check_name(request.path_params["name"], "name")

    def view() -> Any:
        with web.viewing(request, who, "job", team=team, name=name):
            return platform.jobs.describe(who.ctx, team, name)

    found = await web.run(view)
    component = JobTracking.component_name(found) if found.spec.experiment_config else ""
    lineage = graph_href(found.srn) if found.status in TERMINAL else ""  # recorded when the run ends
    return web.render(request, "job.html", who=who, job=found, component=component, lineage=lineage)


@web.page
async def job_log(request: Request) -> Response:
    """The log's last lines (htmx polls this while the job runs)."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = check_name(request.path_params["team"], "team"), check_name(request.path_params["name"], "name")

    def view() -> tuple[Any, list[Any]]:
        with web.viewing(request, who, "job-log", team=team, name=name):
            return platform.jobs.describe(who.ctx, team, name), platform.jobs.logs(who.ctx, team, name, limit=10_000)

    described, lines = await web.run(view)
    return web.render(request, "_job_log.html", job=described, lines=lines[-LOG_TAIL:])


@web.page
async def stop_job(request: Request) -> Response:
    who, _ = await web.action(request)
    platform = web.platform_of(request)
    team, name = check_name(request.path_params["team"], "team"), check_name(request.path_params["name"], "name")
    await web.run(lambda: platform.jobs.stop(who.ctx, team, name))
    return web.redirect(request, f"/console/jobs/{team}/{name}")


@web.page
async def endpoints(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)

    def view() -> tuple[web.Pager, list[str], list[str]]:
        teams = teams_of(platform, who)
        with web.viewing(request, who, "endpoints"):
            found, refused = web.across_teams(teams, lambda t: platform.serving.list_endpoints(who.ctx, t))
        creatable = [
            t for t in teams if web.may(request, who, "CreateEndpoint", Target("endpoint", t, "*", owner=who.user))
        ]
        return web.paginate(found, number), refused, creatable

    listed, refused, creatable = await web.run(view)
    return web.render(request, "endpoints.html", who=who, endpoints=listed, refused=refused, creatable=creatable)


@web.page
async def create_endpoint(request: Request) -> Response:
    who, form = await web.action(request)
    platform = web.platform_of(request)
    team = check_name(form.get("team"), "team")
    spec = EndpointSpec.model_validate({"name": form.get("name"), "EndpointConfigName": form.get("config")})
    await web.run(lambda: platform.serving.create_endpoint(who.ctx, team, spec))
    return web.redirect(request, "/console/endpoints")


@web.page
async def audit(request: Request) -> Response:
    """Audit events (Auditors and PlatformAdmins), filtered, in chain order a page at a time
    (``?after=<seq>``: a cursor, so a page costs the same with 100,000 events)."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    q = {k: request.query_params.get(k, "") for k in ("principal", "action", "team", "decision")}
    if q["decision"] not in ("", "Allow", "Deny", "Invalid"):
        raise InvalidInput("decision is Allow, Deny or Invalid", field="decision")
    after = request.query_params.get("after", "0")
    if not after.isdigit():
        raise InvalidInput("after must be an event number", field="after")
    flt = AuditFilter(
        principal=q["principal"] or None,
        action=q["action"] or None,
        team=q["team"] or None,
        decision=q["decision"] or None,
        after_seq=int(after),
        limit=web.PAGE_SIZE,
    )

    def view() -> list[Any]:
        with web.viewing(request, who, "audit", **{k: v for k, v in q.items() if v}):
            return platform.audit.query(who.ctx, flt)

    events = await web.run(view)
    filters = urllib.parse.urlencode({k: v for k, v in q.items() if v})
    following = events[-1].seq if len(events) == web.PAGE_SIZE else None
    return web.render(
        request, "audit.html", who=who, events=events, q=q, filters=filters, following=following, report=None
    )


@web.page
async def audit_export(request: Request) -> Response:
    """The filtered events as JSON lines, downloaded (authorized once, then streamed)."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    q = {k: request.query_params.get(k, "") or None for k in ("principal", "action", "team", "decision")}
    flt = AuditFilter(**q)  # type: ignore[arg-type]
    events = await web.run(lambda: platform.audit.export(who.ctx, flt))
    lines = (e.model_dump_json().encode() + b"\n" for e in events)
    headers = {"content-disposition": 'attachment; filename="strongroom-audit.jsonl"'}
    return web.secured(StreamingResponse(lines, media_type="application/x-ndjson", headers=headers))


@web.page
async def audit_verify(request: Request) -> Response:
    who, _ = await web.action(request)
    platform = web.platform_of(request)
    report = await web.run(lambda: platform.audit.verify(who.ctx))
    q = dict.fromkeys(("principal", "action", "team", "decision"), "")
    return web.render(request, "audit.html", who=who, events=[], q=q, filters="", following=None, report=report)


@web.page
async def tokens(request: Request) -> Response:
    """My API tokens (never their secrets), with revoke; the one this session stands on is marked."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)

    def view() -> web.Pager:
        with web.viewing(request, who, "tokens"):
            return web.paginate(platform.identity.list_tokens(who.ctx), number)

    listed = await web.run(view)
    return web.render(request, "tokens.html", who=who, tokens=listed, current=who.session.principal.parent_token)


@web.page
async def revoke_token(request: Request) -> Response:
    """Revoke one of my tokens; revoking the one this session was opened with signs this browser out."""
    who, _ = await web.action(request)
    platform = web.platform_of(request)
    token_id = request.path_params["token"]
    if not re.fullmatch(r"tok_[0-9a-f]{16}", token_id):
        raise InvalidInput("not a token id", field="token_id")
    await web.run(lambda: platform.identity.revoke_token(who.ctx, token_id))
    return web.redirect(request, "/console/tokens")


@web.page
async def people(request: Request) -> Response:
    """Teams and users with their roles (PlatformAdmin and Auditor; read only: changes go through
    the CLI or SDK for now)."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)

    def view() -> tuple[list[Any], web.Pager]:
        with web.viewing(request, who, "people"):
            teams = [platform.identity.describe_team(who.ctx, t.name) for t in platform.identity.list_teams(who.ctx)]
            users = platform.identity.list_users(who.ctx)
        return teams, web.paginate(users, number)

    teams, users = await web.run(view)
    return web.render(request, "people.html", who=who, teams=teams, users=users)
