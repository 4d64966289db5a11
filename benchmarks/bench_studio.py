"""The studio under work: first live preview, API latency while a dream runs, and a studio dream against the
same dream run the way the CLI runs it.

1. A real `dreamscope studio` server (subprocess, 127.0.0.1, a fresh data folder). A 512x512 photo (scikit-image's
   coffee, centre crop) is uploaded and dreamed at default settings. First preview: seconds from the job's
   `started` (the worker's clock) to the first `progress` event that carries a preview, read from the job's
   server-sent events on the same machine.
2. While that dream runs, and 5 more are queued, 50 clients poll `GET /api/jobs` and `GET /api/jobs/{id}` in turn,
   each twice a second (a page polling), then back to back (the server's throughput): request latency
   percentiles, client side, each client keeping its connection open.
3. Studio against CLI: the worker's time for a default dream of the photo (`finished - started`) against the same
   job run as `dreamscope dream` runs it (`dreamscope.work.jobs.run` in a fresh process, timed after the model is
   loaded), alternated, median of 3 each. Both use the same thread count.

Run it alone on an idle machine (it prints the load average before and after):

    .venv/bin/python benchmarks/bench_studio.py [--json PATH] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

CLIENTS = 50
PACE = 0.5  # seconds between one client's polls: a page polling twice a second
QUEUED = 5

CLI_JOB = r"""
import sys, time, json
import dreamscope as ds
from dreamscope.work import jobs
from dreamscope.models import load_model
model = load_model()
settings = ds.DreamSettings.from_json(json.loads(sys.argv[3]))
start = time.perf_counter()
jobs.run(jobs.Job(settings, sys.argv[2], {"input": sys.argv[1]}), model=model).result()
print(time.perf_counter() - start)
"""


def start_server(data: Path, threads: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dreamscope", "studio", "--port", "0", "--data", str(data), "--threads", str(threads)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("dreamscope studio: "):
        proc.kill()
        raise SystemExit(f"the studio did not start: {line!r}")
    return proc, line.split(": ", 1)[1].strip()


def wait_done(client: httpx.Client, job_id: str) -> dict:
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.2)


def first_preview(client: httpx.Client, job_id: str) -> tuple[float, dict]:
    """(wall time of the first progress event with a preview, that event's job JSON)."""
    with client.stream("GET", f"/api/jobs/{job_id}/events", timeout=None) as response:
        name = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name in ("progress", "end"):
                job = json.loads(line.split(":", 1)[1])
                if job.get("preview") is not None or name == "end":
                    return time.time(), job
    raise SystemExit("the event stream ended without a preview")


def _poll(base: str, paths: list[str], until: float, every: float, latencies: list[float], failures: list[str]) -> None:
    """One page: poll `paths` in turn on its own connection, one request every `every` seconds (0: back to back)."""
    with httpx.Client(base_url=base, timeout=30) as client:
        i = 0
        next_at = time.perf_counter() + random.uniform(0, every)  # pages poll out of step with each other
        while True:
            time.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += every
            if time.perf_counter() >= until:
                return
            path = paths[i % len(paths)]
            i += 1
            start = time.perf_counter()
            try:
                status = client.get(path).status_code
            except httpx.HTTPError as exc:
                failures.append(type(exc).__name__)
                continue
            latencies.append(time.perf_counter() - start)
            if status != 200:
                failures.append(str(status))


def measure_polling(base: str, client: httpx.Client, paths: list[str], every: float, seconds: float, job_id: str | None) -> dict:
    """CLIENTS pages (threads) polling `paths` for `seconds`: request count and latency percentiles."""
    latencies, failures = [], []
    until = time.perf_counter() + seconds
    pages = [threading.Thread(target=_poll, args=(base, paths, until, every, latencies, failures)) for _ in range(CLIENTS)]
    for page in pages:
        page.start()
    for page in pages:
        page.join()
    running = client.get("/api/jobs", params={"state": "running"}).json()
    meanwhile = "no job" if job_id is None else ("a dream running" if running else "the queue ran out")
    return {
        "clients": CLIENTS,
        "every_s": every,
        "queued": QUEUED if job_id else 0,
        "requests": len(latencies),
        "per_second": len(latencies) / seconds,
        "failures": len(failures),
        "dream_meanwhile": meanwhile,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p95_ms": 1000 * percentile(latencies, 95),
        "p99_ms": 1000 * percentile(latencies, 99),
        "max_ms": 1000 * max(latencies),
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--quick", action="store_true", help="256 px, fewer steps, one repeat: a smoke run")
    parser.add_argument("--seconds", type=float, default=6.0, help="how long the 50 clients poll")
    args = parser.parse_args()
    random.seed(0)

    from PIL import Image
    from skimage import data as samples

    side = 256 if args.quick else 512
    repeats = 1 if args.quick else 3
    settings = {"steps": 3} if args.quick else {}
    threads = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()
    results: dict = {"side": side, "threads": threads, "settings": settings or "defaults"}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        photo = folder / "photo.png"
        coffee = Image.fromarray(samples.coffee())
        crop = min(coffee.size)
        coffee.crop(((coffee.width - crop) // 2, 0, (coffee.width + crop) // 2, crop)).resize((side, side), Image.LANCZOS).save(
            photo
        )

        proc, base = start_server(folder / "studio", threads)
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                with photo.open("rb") as handle:
                    upload = client.post("/api/uploads", files={"file": ("photo.png", handle, "image/png")}).json()

                def submit() -> str:
                    response = client.post(
                        "/api/jobs", json={"recipe": "dream", "settings": settings, "inputs": {"input": upload["id"]}}
                    )
                    response.raise_for_status()
                    return response.json()["id"]

                paths = ["/api/jobs"]
                results["polling"] = {"idle": measure_polling(base, client, paths, PACE, args.seconds, None)}
                # 1 and 2: the first preview, then 50 pollers while it runs with 5 more queued.
                first = submit()
                seen, _event_job = first_preview(client, first)
                job = client.get(f"/api/jobs/{first}").json()
                results["first_preview_s"] = seen - job["started"]
                queued = [submit() for _ in range(QUEUED)]
                paths = ["/api/jobs", f"/api/jobs/{first}"]
                for name, every in (("paced", PACE), ("flat_out", 0.0)):
                    results["polling"][name] = measure_polling(base, client, paths, every, args.seconds, first)
                for job_id in [first, *queued]:
                    client.delete(f"/api/jobs/{job_id}")

                # 3: studio dream against the CLI's job run, alternated.
                studio_s, cli_s = [], []
                for i in range(repeats):
                    done = wait_done(client, submit())
                    if done["state"] != "done":
                        raise SystemExit(f"the studio's dream failed: {done.get('error')}")
                    studio_s.append(done["finished"] - done["started"])
                    line = subprocess.run(
                        [sys.executable, "-c", CLI_JOB, str(photo), str(folder / f"cli{i}.png"), json.dumps(done["settings"])],
                        capture_output=True,
                        text=True,
                        check=True,
                        env={**os.environ, "DREAMSCOPE_THREADS": str(threads)},
                    ).stdout
                    cli_s.append(float(line.strip().splitlines()[-1]))
                results["dream"] = {
                    "studio_s": studio_s,
                    "cli_s": cli_s,
                    "studio_median_s": statistics.median(studio_s),
                    "cli_median_s": statistics.median(cli_s),
                    "ratio": statistics.median(studio_s) / statistics.median(cli_s),
                }
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    results["load_before"], results["load_after"] = load_before, os.getloadavg()

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    dream = results["dream"]
    print(
        f"studio benchmark: {side}x{side} px dream ({results['settings']}), {threads} threads; load average before "
        f"{load_before[0]:.2f}, after {results['load_after'][0]:.2f}"
    )
    print(f"first live preview: {results['first_preview_s']:.2f} s after the job started")
    for name, polling in results["polling"].items():
        pace = f"each every {polling['every_s']:g} s" if polling["every_s"] else "back to back"
        print(
            f"{name}: {CLIENTS} clients polling ({pace}) for {args.seconds:g} s, dream: {polling['dream_meanwhile']}, "
            f"{polling['queued']} queued: {polling['requests']} requests ({polling['per_second']:.0f}/s), {polling['failures']} "
            f"failed; latency p50 {polling['p50_ms']:.1f} ms, p95 {polling['p95_ms']:.1f} ms, p99 {polling['p99_ms']:.1f} ms, "
            f"max {polling['max_ms']:.1f} ms"
        )
    print(
        f"default dream: studio {dream['studio_median_s']:.2f} s, CLI's job run {dream['cli_median_s']:.2f} s "
        f"(medians of {repeats}): studio / CLI = {dream['ratio']:.3f}"
    )


if __name__ == "__main__":
    main()
