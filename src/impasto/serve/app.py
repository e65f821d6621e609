"""The FastAPI app of ``impasto serve``: the page, and a JSON API that scripts can use too.

    GET  /api/options             options a job may set (from TransferConfig), limits, examples
    GET  /api/examples/{name}     a bundled example image
    POST /api/options/resolve     the options as a job would run with them (β for the size)
    POST /api/jobs                create a job: multipart images (and masks) + options   -> 202
    GET  /api/jobs                every job kept, newest first
    GET  /api/jobs/{id}           status and progress
    GET  /api/jobs/{id}/events    the same as Server-Sent Events, until the job ends
    POST /api/jobs/{id}/cancel    cancel (a running job keeps its image so far)
    POST /api/jobs/{id}/rerun     a new job from a finished one's stored inputs and options
    GET  /api/jobs/{id}/preview   the latest iterate (JPEG)
    GET  /api/jobs/{id}/result    the result (PNG with the parameters in its metadata)

The OpenAPI schema is at /openapi.json, browsable at /docs and /redoc (serve/docs.py).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import PIL.Image
from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from .. import imageio
from ..config import TransferConfig
from ..errors import InputError, UsageError
from ..jobs.executor import Executor, require_ray
from ..prepare import check_styles
from ..version import __version__
from ..vgg import MIN_SIDE
from . import intake
from .docs import add_api_pages
from .guards import BodyLimit, SameSite, one_part_each, quiet_multipart
from .jobs import JobManager
from .records import JobStatus, Refused
from .settings import BALANCE_DECADES, Limits, Settings

STATIC = Path(__file__).resolve().parent / "static"
EVENT_POLL_S = 0.1
KEEPALIVE_S = 15.0


class Problem(BaseModel):
    """Why a request was refused, in one line."""

    detail: str


class OptionInfo(BaseModel):
    name: str
    type: str = Field(description="JSON type: integer, number, boolean, string or array")
    default: Any
    choices: list[str] | None
    help: str = Field(description="the command line's help")
    group: str = Field(description="where the page shows it: main, more, or slider (α and β)")
    label: str = Field(description="the page's name for it")
    tip: str = Field(description="the page's help: a line for a person, no flags")
    min: float | None
    max: float | None
    step: float | None


class StyleStrength(BaseModel):
    """The page's balance slider: β on a log scale around the default β of the options chosen
    (POST /api/options/resolve says it), ``decades`` powers of ten either way."""

    decades: float
    default_ratio: float = Field(description="α/β with the default options")


class ResolvedOptions(BaseModel):
    """A job's options as it would run, with every default resolved."""

    options: dict[str, Any]
    ratio: float | None = Field(description="α/β: content_weight / style_weight")
    stages: list[int] = Field(description="the longest side of each coarse-to-fine stage")


class LimitsInfo(BaseModel):
    max_upload_bytes: int
    max_pixels: int
    max_size: int
    max_iterations: int
    max_styles: int
    queue_limit: int


class OptionsInfo(BaseModel):
    options: list[OptionInfo]
    limits: LimitsInfo
    style_strength: StyleStrength
    examples: list[str] = Field(description="names for content_example and style_examples")
    version: str


# One Server-Sent Event of the events endpoint.
_SSE_EVENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "the snapshot's seq"},
        "event": {"type": "string", "enum": ["message"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "a JobStatus",
        },
    },
    "required": ["data"],
}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Documented refusals; every route may answer 422 (a malformed parameter or field)."""
    return {code: {"model": Problem} for code in (*codes, 422)}


def _one_line(errors: Sequence[Any]) -> str:
    parts = []
    for error in errors[:3]:
        where = ".".join(str(x) for x in error.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def make_executor(settings: Settings) -> Executor | None:
    """The executor of ``--executor ray`` (its workers started, their network loaded); None for
    the local one, which the job manager makes (one worker on this machine's device)."""
    where = settings.executor
    if where.executor != "ray":
        return None
    require_ray()
    from ..jobs.rayexec import RayExecutor  # Ray is imported only here

    return RayExecutor(where.ray_address, where.workers, options={"device": settings.device})


# The fields of POST /api/jobs that take one value: a second would be dropped silently.
_SINGLE_PARTS = ("content", "content_example", "options", "client_token", "keep")


def create_app(settings: Settings | None = None, manager: JobManager | None = None) -> FastAPI:
    """The app; its job manager is ``app.state.jobs``. The worker starts with the app (or at
    the first job) and stops when the app shuts down; the jobs stay in the data folder."""
    settings = settings or Settings()
    limits = settings.limits
    if manager is None:
        executor = make_executor(settings)
        try:
            manager = JobManager(
                queue_limit=limits.queue_limit,
                keep=settings.keep,
                keep_seconds=settings.keep_hours * 3600.0,
                preview_every=settings.preview_every,
                data_dir=settings.data_dir,
                executor=executor,
            )
        except BaseException:
            if executor is not None:
                executor.close()
            raise
    jobs = manager
    examples = intake.find_examples()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        jobs.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(jobs.close)

    app = FastAPI(
        title="impasto studio",
        version=__version__,
        description="Neural style transfer (Gatys et al.) as a local web service. Jobs run one "
        "at a time on this machine's device (or one per worker at once on a Ray cluster); "
        "options are those of `impasto transfer`.",
        lifespan=lifespan,
        docs_url=None,  # served from local files (serve/docs.py): they work with no network
        redoc_url=None,
    )
    app.state.jobs = jobs
    app.state.settings = settings

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        """The queue's refusals (full, stopping, storage gone, ...) with their HTTP status."""
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def one_line(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's own 422s (a missing or mistyped field) in the one-line form of ours."""
        return JSONResponse({"detail": _one_line(exc.errors())}, status_code=422)

    app.add_middleware(BodyLimit, limit=limits.body_limit())
    quiet_multipart()
    app.add_middleware(SameSite, loopback_only=settings.loopback_only)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_api_pages(app, STATIC)

    def known(job_id: str) -> JobStatus:
        status = jobs.status(job_id)
        if status is None:
            raise HTTPException(404, f"no job {job_id} (finished jobs are kept for a while only)")
        return status

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/options", response_model=OptionsInfo, tags=["options"])
    def options() -> OptionsInfo:
        """The options a job may set, with defaults, choices and help (from the same
        configuration as the command line), this server's limits and the example images."""
        default = TransferConfig()
        return OptionsInfo(
            options=[OptionInfo(**o) for o in intake.describe_options(limits)],
            limits=LimitsInfo(
                max_upload_bytes=limits.max_upload_bytes,
                max_pixels=limits.max_pixels,
                max_size=limits.max_size,
                max_iterations=limits.max_iterations,
                max_styles=limits.max_styles,
                queue_limit=limits.queue_limit,
            ),
            style_strength=StyleStrength(
                decades=BALANCE_DECADES,
                default_ratio=default.content_weight / default.style_weight,
            ),
            examples=sorted(examples),
            version=__version__,
        )

    @app.post(
        "/api/options/resolve",
        response_model=ResolvedOptions,
        tags=["options"],
        responses=_problems(400),
    )
    def resolve_options(given: dict[str, Any]) -> ResolvedOptions:
        """What a job with these options would run with: every option, the defaults that
        depend on others resolved (β follows the size, the preset and the network), or 422 with
        why they make no configuration (this server's limits are checked at POST /api/jobs).
        The page's balance slider starts at the resolved β."""
        try:
            config = intake.parse_options(given, limits, settings.device, within_limits=False)
        except UsageError as e:
            raise HTTPException(422, intake.for_page(str(e))) from None
        plan = config.stage_plan()
        return ResolvedOptions(
            options=json.loads(config.to_json()),
            ratio=config.content_weight / config.style_weight if config.style_weight else None,
            stages=[size for size, _ in plan],
        )

    @app.get(
        "/api/examples/{name}",
        tags=["options"],
        response_class=FileResponse,
        responses={200: {"content": {"image/jpeg": {}}}, **_problems(404)},
    )
    def example(name: str) -> FileResponse:
        """A bundled example image, by name (see /api/options)."""
        path = examples.get(name)
        if path is None:
            raise HTTPException(404, f"no example '{name}'")
        return FileResponse(path, headers={"Cache-Control": "max-age=3600"})

    @app.post(
        "/api/jobs",
        status_code=202,
        response_model=JobStatus,
        tags=["jobs"],
        dependencies=[Depends(one_part_each(*_SINGLE_PARTS))],
        responses={
            200: {"model": JobStatus, "description": "a job with this client_token exists"},
            **_problems(400, 403, 413, 429, 503),
        },
    )
    def create_job(
        response: Response,
        content: Annotated[
            UploadFile | None, File(description="the content image (a photo)")
        ] = None,
        styles: Annotated[
            list[UploadFile] | None, File(description="one or more style images (paintings)")
        ] = None,
        content_example: Annotated[
            str | None, Form(description="a bundled example instead of an upload")
        ] = None,
        style_examples: Annotated[
            list[str] | None, Form(description="bundled examples as (more) style images")
        ] = None,
        options: Annotated[
            str, Form(description='transfer options as a JSON object, e.g. {"size": 256}')
        ] = "{}",
        client_token: Annotated[
            str | None,
            Form(
                max_length=100,
                description="any unique string: repeating a request with the same token "
                "returns the first job instead of making a second",
            ),
        ] = None,
        masks: Annotated[
            list[UploadFile] | None,
            File(
                description="regions: one grayscale mask per style image (white: that style "
                "paints there), in the styles' order (uploaded styles, then style_examples)"
            ),
        ] = None,
        keep: Annotated[
            UploadFile | None,
            File(description="a grayscale mask of the part of the photo to keep as it is"),
        ] = None,
    ) -> JobStatus:
        """Queue a style transfer; follow it with the events or status endpoints."""
        try:
            config = intake.parse_options(options, limits, settings.device)
            if config.seed is None:  # drawn here, so that the job's status shows it
                config = config.replace(seed=secrets.randbits(31))
            inputs = _inputs(content, styles or [], content_example, style_examples or [], examples)
            count = len(inputs) - 1
            if count == 0:
                raise UsageError("give at least one style image (styles or style_examples)")
            if count > limits.max_styles:
                raise UsageError(f"{count} style images; this server takes {limits.max_styles}")
            check_styles(config, count)  # before any image is decoded
            intake.check_mask_count(len(masks or []), count)
            content_side = config.size
            style_side = max(MIN_SIDE, round(config.size * config.style_scale))
            images = [
                read(limits, content_side if i == 0 else style_side)
                for i, (_, read) in enumerate(inputs)
            ]
            intake.check_feasible(config, images[0], images[1:], limits)
            painted = _masks(masks or [], keep, limits, content_side)
            if painted is not None:
                intake.check_masks(painted, config, count)
        except intake.TooLarge as e:
            raise HTTPException(413, str(e)) from None
        except (UsageError, InputError) as e:
            raise HTTPException(422, intake.for_page(str(e))) from None
        labels = (inputs[0][0], [label for label, _ in inputs[1:]])
        return _submit(response, config, images, labels, client_token, painted)

    def _submit(
        response: Response,
        config: TransferConfig,
        images: list[PIL.Image.Image],
        labels: tuple[str, list[str]],
        client_token: str | None = None,
        masks: intake.Masks | None = None,
    ) -> JobStatus:
        status, created = jobs.submit(
            config, images[0], images[1:], labels, client_token, masks=masks
        )
        response.status_code = 202 if created else 200
        response.headers["Location"] = f"/api/jobs/{status.id}"
        return status

    @app.post(
        "/api/jobs/{job_id}/rerun",
        status_code=202,
        response_model=JobStatus,
        tags=["jobs"],
        responses=_problems(404, 409, 410, 429, 503),
    )
    def rerun_job(response: Response, job_id: str) -> JobStatus:
        """Run a finished job again (one a server stop interrupted, say) as a new job, from the
        inputs and options it was given; this server's limits apply."""
        found = jobs.rerun(job_id)
        if found is None:
            raise HTTPException(404, f"no job {job_id}")
        config, images, labels, masks = found
        try:
            config = config.replace(device=settings.device)
            intake.check_limits(config, limits)
            if masks is not None:
                intake.check_masks(masks, config, len(images) - 1)
        except UsageError as e:
            raise HTTPException(422, intake.for_page(str(e))) from None
        return _submit(response, config, images, labels, masks=masks)

    @app.get("/api/jobs", response_model=list[JobStatus], tags=["jobs"])
    def list_jobs() -> list[JobStatus]:
        """Every job this server keeps, newest first."""
        return jobs.statuses()

    @app.get(
        "/api/jobs/{job_id}",
        response_model=JobStatus,
        tags=["jobs"],
        responses=_problems(404),
    )
    def job_status(job_id: str) -> JobStatus:
        """A job's state, queue position, progress and links."""
        return known(job_id)

    @app.post(
        "/api/jobs/{job_id}/cancel",
        response_model=JobStatus,
        tags=["jobs"],
        responses=_problems(404),
    )
    def cancel_job(job_id: str) -> JobStatus:
        """Cancel a job. A queued job leaves the queue; a running one stops at its next
        iteration and keeps the image so far as its result; a finished one is left as it is."""
        status = jobs.cancel(job_id)
        if status is None:
            raise HTTPException(404, f"no job {job_id}")
        return status

    @app.get(
        "/api/jobs/{job_id}/events",
        tags=["jobs"],
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/event-stream": {"schema": _SSE_EVENT}},
                "description": "one event per snapshot (data: a JobStatus as JSON, id: its "
                "seq) until the job has finished",
            },
            204: {"description": "the job has finished and the client has seen its last event"},
            **_problems(404),
        },
    )
    async def job_events(
        job_id: str,
        after: Annotated[
            int | None, Query(ge=0, description="only snapshots with a larger seq")
        ] = None,
        last_event_id: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Response:
        """Server-Sent Events: the job's snapshots from its creation (or after the given seq;
        a reconnecting EventSource sends Last-Event-ID and continues where it was), ending when
        the job has finished. Disconnecting does not affect the job."""
        start = after if after is not None else _int_or(last_event_id, 0)
        first = jobs.events_after(job_id, start)
        if first is None:
            raise HTTPException(404, f"no job {job_id}")
        if first[1] and not first[0]:
            return Response(status_code=204)  # tells EventSource not to reconnect
        return StreamingResponse(
            _stream(jobs, job_id, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.get(
        "/api/jobs/{job_id}/preview",
        tags=["jobs"],
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}, **_problems(404)},
    )
    def job_preview(job_id: str) -> Response:
        """The latest iterate, as a JPEG of at most 640 pixels."""
        data = jobs.preview(job_id)
        if data is None:
            raise HTTPException(404, f"no preview of job {job_id} (yet)")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get(
        "/api/jobs/{job_id}/result",
        tags=["jobs"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, **_problems(404, 409, 410)},
    )
    def job_result(job_id: str) -> Response:
        """The result as a PNG whose text chunks hold the options, seed and inputs; 410 when
        its file was deleted behind the server's back."""
        found = jobs.result(job_id)
        if found is None:
            raise HTTPException(404, f"no job {job_id}")
        status, data = found
        if data is None:
            why = (
                f"it failed: {status.error}"
                if status.state == "failed"
                else f"it is {status.state}"
            )
            raise HTTPException(409, f"job {job_id} has no result: {why}")
        return Response(
            data,
            media_type="image/png",
            headers={"Content-Disposition": f'attachment; filename="{status.download_name}"'},
        )

    return app


def _int_or(text: str | None, default: int) -> int:
    try:
        return max(0, int(text)) if text is not None else default
    except ValueError:
        return default


async def _stream(jobs: JobManager, job_id: str, seq: int) -> AsyncIterator[str]:
    """Snapshots as SSE events until the job has finished (or is forgotten, or the server
    stops). Polling the snapshots keeps readers entirely apart from the worker."""
    yield "retry: 2000\n\n"
    quiet = 0.0
    while True:
        found = jobs.events_after(job_id, seq)
        if found is None:
            return
        events, finished = found
        for seq, data in events:
            yield f"id: {seq}\ndata: {data}\n\n"
        if events:
            quiet = 0.0
        if finished or jobs.stopping:
            return
        await asyncio.sleep(EVENT_POLL_S)
        quiet += EVENT_POLL_S
        if quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield ": keep-alive\n\n"


_Reader = Callable[[Limits, int], PIL.Image.Image]  # (limits, longest side) -> the image


def _inputs(
    content: UploadFile | None,
    styles: list[UploadFile],
    content_example: str | None,
    style_examples: list[str],
    examples: dict[str, Path],
) -> list[tuple[str, _Reader]]:
    """(label, reader) for the content, then each style; the readers decode when called."""
    if content is not None and content_example:
        raise UsageError("give content or content_example, not both")
    if content is not None:
        first = _upload(content, "content image")
    elif content_example:
        first = _bundled(content_example, examples)
    else:
        raise UsageError("give a content image (content or content_example)")
    rest = [_upload(f, f"style image {i + 1}") for i, f in enumerate(styles)]
    rest += [_bundled(name, examples) for name in style_examples]
    return [first, *rest]


def _upload(file: UploadFile, fallback: str) -> tuple[str, _Reader]:
    label = intake.display_name(file.filename, fallback)

    def read(limits: Limits, longest: int) -> PIL.Image.Image:
        data = file.file.read(limits.max_upload_bytes + 1)  # one byte more tells it is too big
        return intake.decode_upload(data, label, limits, longest)

    return label, read


def _masks(
    styles: list[UploadFile], keep: UploadFile | None, limits: Limits, longest: int
) -> intake.Masks | None:
    """The uploaded masks as grayscale images no larger than the output (the engine resizes
    them to each stage's size); None when there are none."""
    if not styles and keep is None:
        return None
    read = [_upload(f, f"mask {i + 1}") for i, f in enumerate(styles)]
    kept = _upload(keep, "keep mask") if keep is not None else None
    return intake.Masks(
        styles=tuple(reader(limits, longest).convert("L") for _, reader in read),
        keep=kept[1](limits, longest).convert("L") if kept is not None else None,
        names=tuple(label for label, _ in read),
        keep_name=kept[0] if kept is not None else None,
    )


def _bundled(name: str, examples: dict[str, Path]) -> tuple[str, _Reader]:
    path = examples.get(name)
    if path is None:
        choice = ", ".join(sorted(examples)) or "there are none on this server"
        raise UsageError(f"no example {name[:40]!r}; choose from {choice}")

    def read(limits: Limits, longest: int) -> PIL.Image.Image:
        img = imageio.load_image(path, max_pixels=limits.max_pixels)
        return imageio.resize_longest(img, longest) if max(img.size) > longest else img

    return path.name, read
