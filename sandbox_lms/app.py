"""The sandbox LMS as an ASGI app: one catch-all route per registration prefix, dispatched by the
profile's URL shapes (`urls.py`), wrapped in the registration's fault and load injection.

LMS requests skip FastAPI's middleware and router (`SandboxApp`): what the sandbox spends outside the
injected latency is time a benchmark would charge to the client (issue 13)."""
from __future__ import annotations

import asyncio
import re
import time

from fastapi import FastAPI
from starlette.datastructures import State
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox_lms import urls
from sandbox_lms.admin import admin_router
from sandbox_lms.control import SandboxControl
from sandbox_lms.profiles import get_profile
from sandbox_lms.runtime import Runtime
from sandbox_lms.services import Call, handle
from sandbox_lms.state import LmsState, Registration
from sandbox_lms.tokens import token_endpoint
from sandbox_lms.responses import text_response

# scope key: when the request's first bytes reached the server's protocol (perf_counter; set by
# sandbox_lms/server.py). Injected latency counts from there, so the server's own parsing and routing
# fall inside L instead of being added to it.
ARRIVED_KEY = "gradesync.arrived"
# scope key: when a read with injected latency should leave the server (arrival + L; set by dispatch).
DEADLINE_KEY = "gradesync.deadline"

_GROUPS = {"ctx": r"(?P<ctx>[^/]+)", "item": r"(?P<item>\d+)", "dep": r"(?P<dep>[^/]+)",
           "type_id": r"(?P<type_id>\d+)"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _regex(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PLACEHOLDER.finditer(template):
        out += [re.escape(template[pos:m.start()]), _GROUPS[m.group(1)]]
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out) + "$")


def _routes(profile: str) -> list[tuple[str, str, re.Pattern[str]]]:
    """(method, endpoint kind, path regex below the registration prefix) for one profile."""
    items = urls.LINEITEMS_PATHS[profile]
    item = items + urls.ITEM_SUFFIX[profile]
    return [("POST", "token", _regex(urls.TOKEN_PATHS[profile])),
            ("GET", "line_items", _regex(items)), ("POST", "line_items_create", _regex(items)),
            ("GET", "line_item", _regex(item)), ("GET", "results", _regex(item + "/results")),
            ("POST", "scores", _regex(item + "/scores")),
            ("GET", "memberships", _regex(urls.MEMBERSHIPS_PATHS[profile]))]


ROUTES = {p: _routes(p) for p in urls.PROFILES}


def _match(reg: Registration, method: str, rest: str) -> tuple[str, dict[str, str]] | int:
    """The endpoint kind and path groups, or 404/405."""
    path_matched = False
    for m, kind, rx in ROUTES[reg.profile]:
        found = rx.match(rest)
        if found is None:
            continue
        groups = found.groupdict()
        if groups.get("dep", reg.deployment_id) != reg.deployment_id \
                or groups.get("type_id", str(reg.type_id)) != str(reg.type_id):
            return 404
        path_matched = True
        if m == method:
            return kind, groups
    return 405 if path_matched else 404


def _malformed(response: Response) -> Response:
    """The same response with its JSON body cut in half (fault injection)."""
    body = bytes(response.body)
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    return Response(body[: max(1, len(body) // 2)], status_code=response.status_code, headers=headers)


# Canvas's up-front cost per request in flight (§6.1): with `max_in_flight` set, the sandbox's bucket is
# that many costs deep, so X-Rate-Limit-Remaining tells a client how many more it may send.
CANVAS_REQUEST_COST = 50.0
CANVAS_HIGH_WATER = 600.0


def _bucket_remaining(max_in_flight: int | None, others_in_flight: int) -> str:
    """X-Rate-Limit-Remaining (= high-water − bucket, §6.1) when only requests in flight fill the bucket."""
    hwm = CANVAS_HIGH_WATER if max_in_flight is None else CANVAS_REQUEST_COST * max_in_flight
    return f"{max(0.0, hwm - CANVAS_REQUEST_COST * others_in_flight):.1f}"


# What the FastAPI app's catch-all route takes (Starlette adds HEAD to GET), matched by the route's own
# regex; the admin router's prefix comes first there.
_LMS_ROUTE = "/{registration}/{rest:path}"
_LMS_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})
_LMS_PATH = compile_path(_LMS_ROUTE)[0]
_ADMIN_PREFIX = "/_sandbox/"


class SandboxApp:
    """The sandbox's ASGI app: a request the FastAPI app would route to `dispatch` goes there directly
    (behind the same ServerErrorMiddleware: an exception is still a 500), everything else — the admin
    API under `/_sandbox`, other methods, non-HTTP scopes — to the FastAPI app (`api`)."""

    def __init__(self, api: FastAPI, lms: ASGIApp) -> None:
        self.api = api
        self._lms = ServerErrorMiddleware(lms)

    @property
    def state(self) -> State:
        """The FastAPI app's state (`runtime`, `control`)."""
        return self.api.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and scope["method"] in _LMS_METHODS and _LMS_PATH.match(path) \
                and not path.startswith(_ADMIN_PREFIX):
            await self._lms(scope, receive, self._timed(scope, send))
        else:
            await self.api(scope, receive, send)

    def _timed(self, scope: Scope, send: Send) -> Send:
        # A read with injected latency has a deadline (dispatch puts it in the scope): how late its last
        # bytes went to the socket tells the latency timer how early to aim the next ones.
        latency = self.api.state.runtime.latency

        async def timed_send(message: dict) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                deadline = scope.get(DEADLINE_KEY)
                if deadline is not None:
                    latency.answered(deadline)
        return timed_send


def build_app(state: LmsState, runtime: Runtime | None = None) -> SandboxApp:
    """The ASGI app serving every registration of `state` under `/{registration.name}`."""
    rt = runtime or Runtime()
    control = SandboxControl(state, rt)
    app = FastAPI(title="gradesync sandbox LMS", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = rt
    app.state.control = control
    app.include_router(admin_router(control))

    async def dispatch(request: Request) -> Response:
        name, _, rest = request.url.path[1:].partition("/")
        reg = state.registrations.get(name)
        if reg is None:
            return text_response("Not Found", 404)
        matched = _match(reg, request.method, "/" + rest)
        if isinstance(matched, int):
            return text_response("Not Found" if matched == 404 else "Method Not Allowed", matched)
        kind, groups = matched
        profile = get_profile(reg.profile)
        rt.counters.requests[(reg.name, kind)] += 1
        faults = reg.faults
        if faults.down:
            return text_response("Service Unavailable", 503)
        if faults.max_in_flight is not None and rt.in_flight[reg.name] >= faults.max_in_flight:
            rt.counters.requests[(reg.name, "throttled")] += 1
            return profile.throttled()
        rt.in_flight[reg.name] += 1
        rt.counters.in_flight_now(reg.name, rt.in_flight[reg.name])
        arrived = request.scope.get(ARRIVED_KEY) or time.perf_counter()
        try:
            dice = rt.dice(reg)
            delay_s = (faults.latency_ms + (dice.uniform(0, faults.latency_jitter_ms)
                                            if faults.latency_jitter_ms else 0)) / 1000
            # Reads are answered at arrival + latency with the emulator's own work inside that time, so a
            # benchmark measures the client, not the emulator (issue 13); tokens and writes wait first.
            read = request.method == "GET"
            if delay_s > 0 and not read:
                await asyncio.sleep(delay_s)           # never time.sleep: the server stays concurrent
            response = await answer(request, reg, profile, kind, groups, dice)
            if delay_s > 0 and read:
                deadline = arrived + delay_s
                if time.perf_counter() > deadline:
                    rt.counters.requests[(reg.name, "late")] += 1   # the emulator itself was slower than L
                request.scope[DEADLINE_KEY] = deadline
                await rt.latency.sleep_until(deadline)
            if "x-rate-limit-remaining" in response.headers and response.status_code < 400:
                # Canvas (§6.1): what the bucket holds as this answer leaves — the others still in flight.
                response.headers["X-Rate-Limit-Remaining"] = _bucket_remaining(faults.max_in_flight,
                                                                               rt.in_flight[reg.name] - 1)
            return response
        finally:
            rt.in_flight[reg.name] -= 1

    async def answer(request: Request, reg: Registration, profile, kind: str, groups: dict[str, str],
                     dice) -> Response:
        faults = reg.faults
        if kind == "token":
            return await token_endpoint(request, reg, profile, rt)
        if faults.timeout_rate and dice.random() < faults.timeout_rate:
            await asyncio.sleep(faults.hang_seconds)
            return text_response("Gateway Timeout", 504)
        if faults.error_rate_5xx and dice.random() < faults.error_rate_5xx:
            status = 503 if dice.random() < 0.5 else 500
            return text_response("Service Unavailable" if status == 503 else "Internal Server Error", status)
        call = Call(request, reg, profile, rt, kind, groups.get("ctx", ""),
                    int(groups["item"]) if "item" in groups else None)
        response = profile.decorate(await handle(call))
        if faults.malformed_json_rate and response.body and "json" in (response.media_type or
                response.headers.get("content-type", "")) and dice.random() < faults.malformed_json_rate:
            response = _malformed(response)
        return response

    app.add_route(_LMS_ROUTE, dispatch, methods=["GET", "POST", "PUT", "DELETE"])
    return SandboxApp(app, request_response(dispatch))
