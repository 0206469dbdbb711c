"""Admin HTTP routes under `/_sandbox/…`: the SandboxControl actions for other processes (the CLI, a demo).

No authentication — loopback clients only (anything else gets 403). Bodies are small JSON objects.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from sandbox_lms.control import SandboxControl, SandboxError

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _loopback_only(request: Request) -> None:
    host = request.client.host if request.client else ""
    if not (host in _LOOPBACK or host.startswith("127.")):
        raise HTTPException(403, "admin routes are for loopback clients only")


def admin_router(control: SandboxControl) -> APIRouter:
    """The `/_sandbox` routes bound to `control`."""
    r = APIRouter(prefix="/_sandbox", dependencies=[Depends(_loopback_only)])

    def run(action, *args, **kwargs) -> Any:
        try:
            return action(*args, **kwargs)
        except SandboxError as exc:
            raise HTTPException(404, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    @r.get("/counters")
    def counters() -> dict:
        return control.counters()

    @r.post("/counters/reset")
    def reset_counters() -> dict:
        control.reset_counters()
        return {"ok": True}

    @r.get("/registrations")
    def registrations() -> list[dict]:
        return [{"name": g.name, "profile": g.profile, "client_id": g.client_id, "courses": len(g.courses)}
                for g in control.state.registrations.values()]

    @r.get("/{reg}/faults")
    def get_faults(reg: str) -> dict:
        return asdict(run(control.registration, reg).faults)

    @r.post("/{reg}/faults")
    def set_faults(reg: str, body: dict = Body(...)) -> dict:
        return asdict(run(control.set_faults, reg, **body))

    @r.post("/{reg}/scopes/score")
    def score_scope(reg: str, body: dict = Body(...)) -> dict:
        run(control.set_score_scope, reg, bool(body.get("granted", True)))
        return {"ok": True}

    @r.post("/{reg}/courses/{ctx}/conclude")
    def conclude(reg: str, ctx: str, body: dict = Body(default={})) -> dict:
        run(control.conclude_course, reg, ctx, bool(body.get("concluded", True)))
        return {"ok": True}

    @r.post("/{reg}/courses/{ctx}/tool")
    def tool(reg: str, ctx: str, body: dict = Body(...)) -> dict:
        run(control.set_tool_removed, reg, ctx, bool(body.get("removed", True)))
        return {"ok": True}

    @r.post("/{reg}/courses/{ctx}/members/{user_id}")
    def member(reg: str, ctx: str, user_id: str, body: dict = Body(...)) -> dict:
        run(control.set_member, reg, ctx, user_id, roles=body.get("roles"), status=body.get("status"))
        return {"ok": True}

    @r.post("/{reg}/courses/{ctx}/line_items/{item_id}/publish")
    def publish(reg: str, ctx: str, item_id: int) -> dict:
        run(control.set_published, reg, ctx, item_id, True)
        return {"ok": True}

    @r.post("/{reg}/courses/{ctx}/line_items/{item_id}/unpublish")
    def unpublish(reg: str, ctx: str, item_id: int) -> dict:
        run(control.set_published, reg, ctx, item_id, False)
        return {"ok": True}

    @r.post("/{reg}/courses/{ctx}/line_items/{item_id}/manual_grade")
    def manual_grade(reg: str, ctx: str, item_id: int, body: dict = Body(...)) -> dict:
        rec = run(control.set_manual_grade, reg, ctx, item_id, str(body["user_id"]), body.get("score"),
                  scorer=body.get("scorer", "instructor"), comment=body.get("comment"))
        return {"user_id": rec.user_id, "result_score": rec.result_score, "stored_at": rec.stored_at.isoformat()}

    @r.post("/{reg}/courses/{ctx}/line_items/{item_id}/hidden_teacher_grade")
    def hidden_teacher_grade(reg: str, ctx: str, item_id: int, body: dict = Body(...)) -> dict:
        rec = run(control.plant_hidden_teacher_grade, reg, ctx, item_id, str(body["user_id"]), body["score"],
                  scorer=body.get("scorer", "instructor"))
        return {"user_id": rec.user_id, "result_score": rec.result_score, "stored_at": rec.stored_at.isoformat()}

    @r.post("/clock/advance")
    def advance(body: dict = Body(...)) -> dict:
        control.advance_clock(float(body["seconds"]))
        return {"now": control.runtime.now().isoformat()}

    return r
