"""The GPU paths: what can be proven on the CPU here (bf16 through the same code as on CUDA, the
refusals, a loop that creates nothing on the host, the memory estimate's CUDA branch) and, marked
``gpu``, the same claims on a CUDA GPU (``pytest -m gpu``; benchmarks/gpu_check.sh runs them)."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from helpers import CUDA, DEVICES, HostAllocations, HostReads, on_cuda
from impasto import ResourceError, Transfer, TransferConfig, UsageError, imageio, memory
from impasto.optimize import Result
from impasto.precision import check_precision


def fp32_score(image: Any, content: Path, style: Path, device: str) -> float:
    """The exact (fp32) objective of the default options at ``image``."""
    cfg = TransferConfig(size=max(image.size), seed=0, device=device, precision="fp32")
    scorer = Transfer(content, [style], cfg)
    x = (imageio.to_tensor(image) * 255.0).to(scorer.device)
    with torch.no_grad():
        return float(scorer.objective(x)[0])


# --- bf16: the same code path on the CPU and on CUDA ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_a_bf16_run_ends_within_two_percent_of_fp32(
    content_path: Path, style_path: Path, device: str
) -> None:
    """torch autocasts to bfloat16 on the CPU as on CUDA: a whole run at 96 px in bf16 ends
    within 2% of an fp32 run's objective, both rescored in fp32. (Measured: +0.2% at 60
    iterations, -1.2% at 150, +1.1% at 300; before L-BFGS refused pairs that measure rounding
    noise, bf16 stalled at 11x the fp32 objective here.)"""
    scores = {}
    for mode in ("fp32", "bf16"):
        cfg = TransferConfig(size=96, iterations=60, seed=0, precision=mode, device=device)
        result = Transfer(content_path, [style_path], cfg).run()
        scores[mode] = fp32_score(result.image, content_path, style_path, device)
    start = fp32_score(imageio.load_image(content_path), content_path, style_path, device)
    assert scores["fp32"] < 0.5 * start  # both ran: the objective fell
    assert scores["bf16"] == pytest.approx(scores["fp32"], rel=0.02)


def test_bf16_autocasts_the_network_on_the_cpu(content_path: Path, style_path: Path) -> None:
    """The convolutions really run in bfloat16 under --precision bf16 (not fp32 in disguise)."""
    from impasto.precision import arithmetic

    cfg = TransferConfig(size=32, iterations=1, seed=0, device="cpu", precision="bf16")
    t = Transfer(content_path, [style_path], cfg)
    seen: list[torch.dtype] = []
    hook = t.vgg.register_forward_hook(lambda _m, _i, out: seen.append(_first(out).dtype))
    try:
        with arithmetic("bf16", t.device):
            t.objective(t.problem.x0)
    finally:
        hook.remove()
    assert seen and seen[0] == torch.bfloat16


def _first(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        return _first(next(iter(out.values())))
    return _first(out[0])


# --- precisions and devices that can't apply: one line, exit 2 -----------------------------------


def test_tf32_off_cuda_is_refused_in_one_line(content_path: Path, style_path: Path) -> None:
    cfg = TransferConfig(size=32, device="cpu", precision="tf32")
    with pytest.raises(UsageError, match="--precision tf32 needs a CUDA GPU"):
        Transfer(content_path, [style_path], cfg)


def test_precision_checks_read_the_gpu_s_abilities(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _d=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(UsageError, match=r"Ampere or newer .* 7\.5: use fp32"):
        check_precision("tf32", cuda)
    with pytest.raises(UsageError, match="no bfloat16"):
        check_precision("bf16", cuda)
    for fine in ("auto", "fp32"):
        check_precision(fine, cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _d=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    for fine in ("auto", "fp32", "tf32", "bf16"):
        check_precision(fine, cuda)
    for fine in ("auto", "fp32", "bf16"):
        check_precision(fine, torch.device("cpu"))


@pytest.mark.skipif(CUDA, reason="checks the refusals of a machine without a GPU")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "cuda"], "--device cuda: no CUDA GPU is available here"),
        (["--precision", "tf32"], "--precision tf32 needs a CUDA GPU"),
    ],
)
def test_cli_refuses_what_this_machine_cannot_do(
    content_path: Path, style_path: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out.png"
    argv = [sys.executable, "-m", "impasto", "transfer", str(content_path), str(style_path)]
    proc = subprocess.run(
        [*argv, "-o", str(out), "--size", "32", "--iterations", "1", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not out.exists()


# --- nothing created on the host inside the loop -------------------------------------------------


def test_the_host_allocation_detector_sees_a_planted_one() -> None:
    x = torch.ones(2, device="cpu")
    with HostAllocations() as spy:
        torch.ones(2, device="cpu")
        torch.zeros(3)
        x.new_tensor([1.0, 2.0])
    assert [c.split(" ")[0] for c in spy.calls] == ["zeros", "new_tensor"]


# The losses besides the paper's (issue 21): each must keep the loop on the device too.
LOSSES = [
    ("gram", "features"),
    ("sliced", "features"),
    ("remd", "self-similarity"),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.parametrize(("style_loss", "content_loss"), LOSSES)
def test_the_loop_creates_no_tensor_on_the_host(
    content_path: Path,
    style_path: Path,
    device: str,
    optimizer: str,
    style_loss: str,
    content_loss: str,
) -> None:
    """Every tensor the run creates (coarse-to-fine stages, L-BFGS or Adam, the history, the
    best iterate, a listener asking for the losses) names its device or copies one's. On the
    CPU torch's own code may keep scalars on the host, which is the device there (Adam's step
    count, in torch 2.11): impasto's calls are checked; on CUDA every call is."""
    cfg = TransferConfig(
        size=48,
        scales=(32, 48),
        iterations=12,
        seed=0,
        device=device,
        optimizer=optimizer,
        style_loss=style_loss,
        content_loss=content_loss,
    )
    t = Transfer(content_path, [style_path], cfg)
    losses: list[float] = []
    with HostAllocations(ours_only=device == "cpu") as spy:
        t.run(on_step=lambda step: losses.append(step.loss))
    assert spy.calls == []
    assert len(losses) == 12


def test_the_read_detector_sees_planted_reads() -> None:
    m, slot = torch.zeros(4, 4), torch.tensor(2)
    with HostReads() as spy:
        m.index_select(1, slot.view(1))
    assert spy.reads == 0
    with HostReads() as spy:
        _ = m[:, slot]  # a 0-dim index is read back
        bool(m.sum() > 0)
    assert spy.reads == 2


def test_an_lbfgs_step_reads_nothing_back() -> None:
    from impasto.lbfgs import DeviceLBFGS

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(30, 30, generator=gen)
    a = a @ a.T + torch.eye(30)
    x = torch.randn(30, generator=gen)
    opt = DeviceLBFGS(30, history=5, max_step=1.0, min_cosine=0.01)
    with HostReads() as spy:
        for _ in range(12):  # past the history's length: slots are reused
            opt.step(x, a @ x)
    assert spy.reads == 0
    assert int(opt.filled.sum()) == 5


@pytest.mark.parametrize(("style_loss", "content_loss"), LOSSES)
def test_the_loop_reads_back_only_to_check_for_divergence(
    content_path: Path, style_path: Path, style_loss: str, content_loss: str
) -> None:
    cfg = TransferConfig(
        size=48,
        iterations=30,
        scales="one",
        seed=0,
        device="cpu",
        style_loss=style_loss,
        content_loss=content_loss,
    )
    t = Transfer(content_path, [style_path], cfg)
    with HostReads() as spy:
        result = t.run()
    # One read per divergence check (every 10 steps), a few at the end (the best loss, the last
    # image's loss, the check of the history).
    assert spy.reads <= 30 // 10 + 5
    assert result.iterations == 30


def test_a_run_never_moves_the_caller_s_network(vgg19: Any) -> None:
    """A network handed to a run on another device is copied there, not moved: the caller's
    stays where it was (a shared CPU network moved to the GPU broke the next CPU run)."""
    from impasto.prepare import network_on

    meta = torch.device("meta")  # stands for a GPU here: a device the network is not on
    there = network_on(vgg19, meta)
    assert next(there.parameters()).device == meta
    assert next(vgg19.parameters()).device == torch.device("cpu")
    assert network_on(vgg19, torch.device("cpu")) is vgg19  # already there: itself


# --- the memory estimate's CUDA branch -----------------------------------------------------------


class FakeGPU:
    """What torch.cuda reports about a GPU's memory, made up: free bytes, total, the peak."""

    def __init__(self, free: int, total: int, peak: int) -> None:
        self.free, self.total, self.peak = free, total, peak

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda _d=None: (self.free, self.total))
        monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda _d=None: self.peak)


def test_the_estimate_reads_a_cuda_device_s_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    gib = 2**30
    FakeGPU(free=3 * gib, total=80 * gib, peak=123).install(monkeypatch)
    cuda = torch.device("cuda")
    assert memory.available_memory(cuda) == 3 * gib
    assert memory.peak_memory(cuda) == 123
    cfg = TransferConfig(size=2048)
    with pytest.raises(ResourceError) as err:
        memory.check_memory((2048, 1536), cfg, cuda)
    text = str(err.value)
    assert "3.0 GiB is available on cuda" in text
    fits = int(re.search(r"try --size (\d+)", text).group(1))  # type: ignore[union-attr]
    assert memory.estimate_memory(memory.output_size((2048, 1536), fits), cfg) <= 3 * gib
    assert memory.estimate_memory(memory.output_size((2048, 1536), fits + 8), cfg) > 3 * gib
    # --max-memory caps what the GPU has free, as on the CPU.
    capped = cfg.replace(max_memory=1.0)
    assert memory.memory_limit(capped, cuda) == gib
    memory.check_memory((64, 48), cfg.replace(size=64), cuda)  # a small run fits: no error


# --- on a CUDA GPU -------------------------------------------------------------------------------


@pytest.mark.gpu
@on_cuda
@pytest.mark.parametrize(("style_loss", "content_loss"), LOSSES)
def test_a_cuda_run_is_replayed_from_a_graph_and_waits_only_to_check(
    content_path: Path, style_path: Path, style_loss: str, content_loss: str
) -> None:
    """After the warm-up every iteration is a replay of one captured CUDA graph; during the
    replays the host waits for the GPU only at the divergence checks (every 10 steps)."""
    from impasto import graphs

    iterations = 60
    cfg = TransferConfig(
        size=96,
        iterations=iterations,
        scales="one",
        seed=0,
        device="cuda",
        style_loss=style_loss,
        content_loss=content_loss,
    )
    t = Transfer(content_path, [style_path], cfg)
    assert t.run().replayed == iterations - graphs.WARMUP
    torch.cuda.synchronize()
    waits: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda *a, **k: waits.append(str(a[0]))
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = t.run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert result.replayed == iterations - graphs.WARMUP
    # The eager warm-up and the capture wait a few times each; the replays once per check.
    assert len(waits) <= 20 * graphs.WARMUP + iterations // 10 + 10, waits[:3]


@pytest.mark.gpu
@on_cuda
@pytest.mark.parametrize(("style_loss", "content_loss"), LOSSES)
def test_a_graphed_run_follows_the_eager_one(
    content_path: Path,
    style_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    style_loss: str,
    content_loss: str,
) -> None:
    """The same kernels replayed: the losses step by step as an eager run's (the sliced loss's
    directions too: each replay takes the next set of the bank, as each eager step does)."""
    from impasto import graphs

    cfg = TransferConfig(
        size=96,
        iterations=30,
        scales="one",
        seed=0,
        device="cuda",
        style_loss=style_loss,
        content_loss=content_loss,
    )
    graphed = Transfer(content_path, [style_path], cfg.replace(precision="fp32")).run()
    monkeypatch.setattr(graphs, "ENABLED", False)
    eager = Transfer(content_path, [style_path], cfg.replace(precision="fp32")).run()
    again = Transfer(content_path, [style_path], cfg.replace(precision="fp32")).run()
    assert graphed.replayed == 30 - graphs.WARMUP and eager.replayed == 0

    def apart(r: Result, s: Result) -> float:
        """The largest relative difference of the first 20 steps' totals."""
        pairs = zip(r.history[:20], s.history[:20], strict=True)
        return max(abs(a["total"] - b["total"]) / abs(b["total"]) for a, b in pairs)

    # On an H200 the sliced and remd runs ended their 20 steps 0.13% from the eager ones (Gram's
    # agree to 1e-3). The likely cause, which this checks on the next GPU: atomics in sort's and
    # gather's backward make even two eager runs differ; the replay may be as far from an eager
    # run as another eager run is, and no further.
    assert apart(graphed, eager) <= max(1e-3, 3 * apart(again, eager))
    assert graphed.final_loss == pytest.approx(eager.final_loss, rel=0.02)


@pytest.mark.gpu
@on_cuda
@pytest.mark.parametrize(("style_loss", "content_loss"), LOSSES)
def test_a_cuda_run_peaks_within_the_estimate(
    content_path: Path, style_path: Path, style_loss: str, content_loss: str
) -> None:
    """What this run allocates on the GPU (network included; other tests' leftovers are not
    counted) stays within its estimate."""
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    cfg = TransferConfig(
        size=384,
        iterations=20,
        seed=0,
        device="cuda",
        style_loss=style_loss,
        content_loss=content_loss,
    )
    t = Transfer(content_path, [style_path], cfg)
    result = t.run()
    assert result.peak_memory is not None and result.peak_memory > before
    assert result.peak_memory - before <= memory.estimate_memory(t.size, cfg)


@pytest.mark.gpu
@on_cuda
def test_running_out_of_gpu_memory_is_a_resource_error(
    content_path: Path, style_path: Path
) -> None:
    torch.cuda.empty_cache()
    total = torch.cuda.mem_get_info()[1]
    torch.cuda.set_per_process_memory_fraction(256 * 2**20 / total)  # 256 MiB for this process
    try:
        cfg = TransferConfig(size=1024, iterations=3, scales="one", seed=0, device="cuda")
        with pytest.raises(ResourceError, match="out of memory at --size 1024; try --size"):
            Transfer(content_path, [style_path], cfg).run()
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()


@pytest.mark.gpu
@on_cuda
def test_auto_picks_the_gpu(content_path: Path, style_path: Path) -> None:
    result = Transfer(content_path, [style_path], TransferConfig(size=32, iterations=2)).run()
    assert result.device.startswith("cuda")


@pytest.mark.gpu
@on_cuda
def test_a_cpu_network_given_to_a_gpu_run_stays_on_the_cpu(
    content_path: Path, style_path: Path, vgg19: Any
) -> None:
    cfg = TransferConfig(size=32, iterations=2, device="cuda")
    Transfer(content_path, [style_path], cfg, vgg=vgg19).run()
    assert next(vgg19.parameters()).device.type == "cpu"
