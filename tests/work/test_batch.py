"""Batch work: a folder through one recipe on an engine (this process, local processes, a real Ray cluster on
127.0.0.1), the same bytes whichever ran it, failures recorded, dead workers retried, interrupted runs resumed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageOps

import dreamscope as ds
from batch_tasks import marked
from conftest import INTERRUPTIBLE, chelsea, run_dreamscope
from dreamscope import cli
from dreamscope.errors import DreamscopeError, SettingsError
from dreamscope.events import run as run_events
from dreamscope.io import provenance
from dreamscope.settings import DreamSettings, ExplainSettings, ProbeSettings
from dreamscope.work import batch

TESTS = str(Path(__file__).resolve().parents[1])  # the helpers (batch_tasks) live there
TOY = dict(model="toy_models:factory", octaves=1, steps=3)
TOY_FLAGS = ["--model", "toy_models:factory", "--octaves", "1", "--steps", "3"]


def photos(folder: Path, count: int = 3, damaged: bool = False) -> Path:
    """`count` different small real photos (one in a subfolder), and optionally a damaged one."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "more").mkdir(exist_ok=True)
    base = chelsea((96, 72))
    for number in range(count):
        picture = ImageOps.mirror(base) if number % 2 else base
        picture = picture.rotate(7 * number)
        (folder / ("more" if number == count - 1 else "") / f"cat{number}.png").parent.mkdir(exist_ok=True)
        picture.save(folder / ("more" if number == count - 1 else "") / f"cat{number}.png")
    if damaged:
        (folder / "damaged.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def run(items, engine, summary=None):
    return run_events(batch.run_batch(items, engine, summary=summary))


# -- items, naming, resume (in this process: fast) ---------------------------------------------------------------


def test_outputs_are_named_after_their_inputs_and_clashes_keep_the_extension(tmp_path):
    folder = photos(tmp_path / "in", 2)
    chelsea((64, 48)).save(folder / "cat0.jpg")  # cat0.png and cat0.jpg would both make cat0.png
    out = folder / "dreams"  # inside the input folder: its files are outputs, never inputs
    out.mkdir()
    Image.new("RGB", (8, 8)).save(out / "old.png")
    items = batch.folder_jobs(folder, DreamSettings(**TOY), out)
    named = {item.name: Path(item.output).relative_to(out.resolve()).as_posix() for item in items}
    assert named == {"cat0.jpg": "cat0_jpg.png", "cat0.png": "cat0_png.png", "more/cat1.png": "more/cat1.png"}
    probes = batch.folder_jobs(folder, ProbeSettings(model=TOY["model"]), out)
    assert Path(probes[-1].output).name == "cat1" and not Path(probes[-1].output).suffix  # a report folder


def test_a_damaged_picture_is_recorded_and_the_batch_goes_on(tmp_path):
    folder = photos(tmp_path / "in", 2, damaged=True)
    out = tmp_path / "out"
    result = run(batch.folder_jobs(folder, DreamSettings(**TOY), out), batch.InlineEngine(), out / "batch.json")
    assert [o.status for o in result.outcomes] == ["done", "failed", "done"]  # cat0, damaged, more/cat1
    assert "damaged.jpg" in result.failures[0].message and "\n" not in result.failures[0].message
    summary = json.loads((out / "batch.json").read_text())
    assert (summary["done"], summary["failed"], summary["items"]) == (2, 1, 3)
    assert summary["failures"][0]["item"] == "damaged.jpg" and summary["outcomes"][1]["status"] == "failed"
    assert sorted(outputs(out)) == ["cat0.png", "more/cat1.png"]
    assert provenance.read(out / "cat0.png").settings == DreamSettings(**TOY)


def test_a_worker_out_of_memory_is_one_line_naming_what_to_lower_and_the_batch_goes_on(tmp_path, monkeypatch):
    import toy_models

    def exhausted(self, x):  # PyTorch's own words when its CPU allocator fails
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate "
            "8589934592 bytes. Error code 12 (Cannot allocate memory)"
        )

    folder = photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    ds.load_model(TOY["model"])  # loaded (and kept) first: the allocator fails in the dreams, not in the trial pass
    monkeypatch.setattr(toy_models.ToyNet, "forward", exhausted)
    result = run(batch.folder_jobs(folder, DreamSettings(**TOY), out), batch.InlineEngine(), out / "batch.json")
    assert [o.status for o in result.outcomes] == ["failed", "failed"]
    for outcome in result.failures:
        assert re.fullmatch(
            r"out of memory( at \d+x\d+ px on cpu)?; use a smaller max_size or tile, or give each worker more memory "
            r"\(fewer workers\)",
            outcome.message,
        ), outcome.message
        assert "{max_size}" in outcome.template  # so the command line says --max-size
    assert outputs(out) == {} and not list(out.rglob(".*.part"))  # nothing half-written left behind


def test_a_rerun_skips_complete_outputs_by_their_record_and_redoes_the_rest(tmp_path):
    folder = photos(tmp_path / "in", 3)
    out = tmp_path / "out"
    settings = DreamSettings(**TOY)
    run(batch.folder_jobs(folder, settings, out), batch.InlineEngine())
    first = outputs(out)
    stamps = {name: (out / name).stat().st_mtime_ns for name in first}
    # One input's bytes change, one output is cut short, and a killed writer's temporary file lies beside another.
    ImageOps.flip(chelsea((96, 72))).save(folder / "cat0.png")
    (out / "cat1.png").write_bytes(first["cat1.png"][:200])
    (out / ".cat1.png.0a1b2c3d.part").write_bytes(b"half")
    result = run(batch.folder_jobs(folder, settings, out), batch.InlineEngine())
    assert {o.name: o.status for o in result.outcomes} == {"cat0.png": "done", "cat1.png": "done", "more/cat2.png": "skipped"}
    assert (out / "more/cat2.png").stat().st_mtime_ns == stamps["more/cat2.png"]
    assert outputs(out)["cat1.png"] == first["cat1.png"]  # made again, the same bytes
    assert not list(out.glob(".*.part"))
    # Other settings: every output is made again.
    result = run(batch.folder_jobs(folder, settings.replace(steps=4), out), batch.InlineEngine())
    assert {o.status for o in result.outcomes} == {"done"}


def test_the_command_reports_failures_with_a_nonzero_exit_and_leaves_no_folder_on_bad_input(tmp_path, capsys, monkeypatch):
    folder = photos(tmp_path / "in", 1, damaged=True)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["batch", "dream", str(folder), "-o", "out", "--workers", "0", "-q", *TOY_FLAGS])
    err = capsys.readouterr().err
    assert code == 1 and "1 made, 1 failed" in err and "damaged.jpg failed:" in err and "Traceback" not in err
    for argv, needle in (
        (["batch", "dream", "missing", "-o", "x"], "not a folder: missing"),
        (["batch", "dream", str(folder), "-o", str(folder / "more" / "cat0.png")], "is a file"),
        (["batch", "dream", str(folder), "-o", "x", "--ray", "127.0.0.1:1"], "no Ray cluster answers at 127.0.0.1:1"),
        (["batch", "dream", str(folder), "-o", "x", "--octaves", "0"], "--octaves"),
    ):
        assert cli.main(argv) != 0
        err = capsys.readouterr().err
        assert err.startswith("error: ") and needle in err and err.count("\n") == 1, err
        assert not (tmp_path / "x").exists()


def test_a_failed_items_note_names_settings_as_flags_and_batch_json_as_fields(tmp_path, capsys, monkeypatch):
    """A picture too small for the octaves fails alone. The command line words its note in flags, as the single
    command words its error (it once said "a smaller octave_scale"); batch.json keeps the library's words, the field
    names, for scripts."""
    folder = photos(tmp_path / "in", 1)
    chelsea((24, 18)).save(folder / "small.png")
    monkeypatch.chdir(tmp_path)
    flags = ["--model", TOY["model"], "--octaves", "3", "--steps", "1"]
    assert cli.main(["batch", "dream", "in", "-o", "out", "--workers", "0", *flags]) == 1
    err = capsys.readouterr().err
    said = (
        "{octaves} is too many for this 24x18 px picture: the smallest octave would be 12x9 px, too small for layer "
        "features (needs 32 px per side); use fewer {octaves}, a smaller {octave_scale} or a larger picture"
    )
    as_flags = said.format(octaves="--octaves", octave_scale="--octave-scale")
    assert f"note: small.png failed: {as_flags}" in err.splitlines() and "octave_scale" not in err, err
    assert json.loads((tmp_path / "out" / "batch.json").read_text())["failures"] == [
        {"item": "small.png", "message": said.format(octaves="octaves", octave_scale="octave_scale")}
    ]
    assert cli.main(["dream", "in/small.png", "-o", "one.png", *flags]) == 2  # a setting this picture cannot take
    assert capsys.readouterr().err == f"error: {as_flags}\n"


def _tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry under `folder`: a file's bytes, a link's target (links are not followed), a folder as "folder"."""
    found: dict[str, bytes | str] = {}
    for directory, subfolders, names in os.walk(folder):
        for name in subfolders + names:
            path = Path(directory, name)
            key = path.relative_to(folder).as_posix()
            found[key] = os.readlink(path) if path.is_symlink() else "folder" if path.is_dir() else path.read_bytes()
    return found


def test_no_output_of_a_batch_is_written_over_an_input(tmp_path, capsys, monkeypatch):
    """`batch dream top/photos -o top` once wrote the dream of photos/photos/a.jpg over the input photos/a.png. An
    output folder that holds the input folder is refused (however it is spelled), and so is any output that is the
    same file as an input (device and inode: a hard link, or a link in the output folder that leads back among the
    pictures) or a report folder, replaced whole, that holds one: one error line before any work, nothing written."""
    monkeypatch.chdir(tmp_path)
    pictures = photos(tmp_path / "top" / "photos", 2)  # cat0.png, more/cat1.png
    (pictures / "photos").mkdir()
    chelsea((64, 48)).save(pictures / "photos" / "cat0.jpg")  # its dream would be top/photos/cat0.png
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "more").symlink_to(pictures / "more")  # linked/more/cat1.png is the input more/cat1.png
    (tmp_path / "hard").mkdir()
    os.link(pictures / "cat0.png", tmp_path / "hard" / "cat0.png")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "cat0").symlink_to(pictures / "more")  # cat0.png's report would replace more/ whole
    before = _tree(tmp_path)
    for recipe, output, said in (
        ("dream", "top", "error: the output folder top holds the input folder top/photos, so outputs would land among"),
        ("dream", "top/photos/more/..", "error: the output folder top/photos/more/.. is the input folder"),
        ("dream", "top/photos/more/../..", "error: the output folder top/photos/more/../.. holds the input folder"),
        ("dream", str(tmp_path), f"error: the output folder {tmp_path} holds the input folder top/photos"),
        ("dream", "linked", f"error: the output {tmp_path / 'linked/more/cat1.png'} of more/cat1.png would replace the input "),
        ("dream", "hard", f"error: the output {tmp_path / 'hard/cat0.png'} of cat0.png would replace the input top/photos/cat0"),
        (
            "probe",
            "reports",
            f"error: the output {tmp_path / 'reports/cat0'} of cat0.png would replace the input top/photos/more",
        ),
    ):
        assert cli.main(["batch", recipe, "top/photos", "-o", output, "--workers", "0", "-q", *TOY_FLAGS]) != 0
        err = capsys.readouterr().err
        assert err.startswith(said) and err.count("\n") == 1, (output, err)
        assert _tree(tmp_path) == before, output  # every picture kept, nothing written (no batch.json either)


def test_an_output_folder_inside_the_input_folder_keeps_every_input_and_takes_no_output_as_one(tmp_path):
    """The one nesting a batch allows: its pictures are never inputs (a rerun does not dream the dreams) and every
    output lands inside it, so no input changes, run after run."""
    folder = photos(tmp_path / "in", 2)
    out = folder / "dreams"
    inputs = _tree(folder)
    first = run(batch.folder_jobs(folder, DreamSettings(**TOY), out), batch.InlineEngine(), out / "batch.json")
    assert [(o.name, o.status) for o in first.outcomes] == [("cat0.png", "done"), ("more/cat1.png", "done")]
    again = batch.folder_jobs(folder, DreamSettings(**TOY), out)
    assert [item.name for item in again] == ["cat0.png", "more/cat1.png"]  # not dreams/cat0.png
    assert {o.status for o in run(again, batch.InlineEngine()).outcomes} == {"skipped"}
    after = _tree(folder)
    assert {name: value for name, value in after.items() if not name.startswith("dreams")} == inputs
    assert sorted(name for name in after if name.endswith(".png") and name.startswith("dreams/")) == [
        "dreams/cat0.png",
        "dreams/more/cat1.png",
    ]
    # A link inside it that leads back among the pictures would write over one: refused like any output over an input.
    (out / "more" / "cat1.png").unlink()
    (out / "more").rmdir()
    (out / "more").symlink_to(folder / "more")
    with pytest.raises(DreamscopeError, match="of more/cat1.png would replace the input"):
        batch.folder_jobs(folder, DreamSettings(**TOY), out)


@pytest.mark.parametrize(
    "recipe, flags, code, said",
    [
        # An unknown name is a failure of the run (exit 1), as `dreamscope dream --layer nope` says it; a value the
        # model cannot take a mistake in the settings (exit 2).
        ("dream", ["--layer", "nope"], 1, "error: --layer names 'nope', which is not a layer of toy_models:factory\n"),
        ("dream", ["--channels", "40"], 1, "error: --channels names channel 40 of features, which has channels 0-15\n"),
        ("probe", ["--layers", "nope"], 1, "error: --layers names 'nope', which is not a layer of toy_models:factory\n"),
        (
            "explain",
            ["--layer", "features.2", "--groups", "20"],
            2,
            "error: --groups must be at most features.2's 16 channels, got 20\n",
        ),
    ],
    ids=["unknown layer", "unknown channel", "probe's layers", "explain's groups"],
)
def test_settings_the_model_cannot_take_are_one_error_before_any_work(tmp_path, capsys, monkeypatch, recipe, flags, code, said):
    """Checked once for the whole folder, as the single command checks its one picture: not a failure per picture,
    no batch.json, no output folder (a damaged picture among them changes nothing)."""
    folder = photos(tmp_path / "in", 2, damaged=True)
    monkeypatch.chdir(tmp_path)
    argv = ["batch", recipe, str(folder), "-o", "out", "--workers", "0", "--model", "toy_models:factory", *flags]
    assert cli.main(argv) == code
    assert capsys.readouterr().err == said
    assert not (tmp_path / "out").exists()
    single = [recipe, str(folder / "cat0.png"), "-o", "one" + ("" if recipe != "dream" else ".png"), *argv[7:]]
    assert cli.main(single) == code and capsys.readouterr().err == said  # the same words and code as one picture's


def test_folder_jobs_check_the_settings_against_the_model_before_any_work(tmp_path):
    folder = photos(tmp_path / "in", 1, damaged=True)
    out = tmp_path / "out"
    with pytest.raises(SettingsError) as caught:
        batch.folder_jobs(folder, DreamSettings(**TOY, layer="nope"), out)
    assert caught.value.field == "layer" and "not a layer of toy_models:factory" in str(caught.value)
    assert not out.exists()
    with pytest.raises(SettingsError, match="groups"):
        batch.folder_jobs(folder, ExplainSettings(model=TOY["model"], layer="features.2", groups=20), out)
    assert not out.exists()
    # What only a picture can tell stays that picture's failure: the settings are fine, the damaged file fails alone.
    result = run(batch.folder_jobs(folder, DreamSettings(**TOY), out), batch.InlineEngine())
    assert [o.status for o in result.outcomes] == ["failed", "done"]


def test_without_ray_the_message_names_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if it were not installed
    assert cli.main(["batch", "dream", str(photos(tmp_path / "in", 1)), "-o", str(tmp_path / "x"), "--ray", "auto"]) == 1
    assert capsys.readouterr().err == "error: running on Ray needs the ray extra: pip install 'dreamscope[ray]'\n"


# -- local processes ---------------------------------------------------------------------------------------------


def test_local_processes_give_the_same_bytes_as_this_process(tmp_path):
    folder = photos(tmp_path / "in", 3, damaged=True)
    settings = DreamSettings(**TOY)
    inline = run(batch.folder_jobs(folder, settings, tmp_path / "a"), batch.InlineEngine())
    local = run(batch.folder_jobs(folder, settings, tmp_path / "b"), batch.LocalEngine(2))
    assert [(o.name, o.status) for o in local.outcomes] == [(o.name, o.status) for o in inline.outcomes]
    assert os.getpid() not in {int(o.worker.split(":")[1]) for o in local.outcomes}  # made in the workers
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b") and len(outputs(tmp_path / "a")) == 3


def kill_first_worker(marks: Path, stop: threading.Event) -> list[int]:
    """In a thread: wait for a worker to announce an item, kill it (SIGKILL: no clean-up), once."""
    killed = []

    def watch():
        while not stop.is_set():
            found = sorted(marks.iterdir())
            if found:
                os.kill(int(found[0].name), signal.SIGKILL)
                killed.append(int(found[0].name))
                return
            time.sleep(0.005)

    threading.Thread(target=watch, daemon=True).start()
    return killed


def test_a_local_worker_killed_mid_item_is_replaced_and_its_item_retried(tmp_path):
    folder = photos(tmp_path / "in", 3)
    marks = tmp_path / "marks"
    marks.mkdir()
    settings = DreamSettings(**{**TOY, "steps": 30})
    items = batch.folder_jobs(folder, settings, tmp_path / "out")
    stop = threading.Event()
    killed = kill_first_worker(marks, stop)
    result = run(marked(items, marks), batch.LocalEngine(2))
    stop.set()
    assert len(killed) == 1 and killed[0] not in {int(o.worker.split(":")[1]) for o in result.outcomes}
    assert [o.status for o in result.outcomes] == ["done"] * 3 and max(o.attempts for o in result.outcomes) == 2
    reference = run(batch.folder_jobs(folder, settings, tmp_path / "ref"), batch.InlineEngine())
    assert reference.count("done") == 3 and outputs(tmp_path / "out") == outputs(tmp_path / "ref")


# -- a real Ray cluster on 127.0.0.1 -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    """A real Ray cluster started here on 127.0.0.1 (`ray.init(num_cpus=2)`: its head, object store and workers are
    separate processes) whose workers import the tests' models; the command line joins it as a second driver, by
    address, as it would join any cluster. Shut down afterwards."""
    ray = batch.import_ray()
    ray.init(
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": TESTS}},
    )
    try:
        yield "127.0.0.1:" + ray.get_runtime_context().gcs_address.rpartition(":")[2]
    finally:
        ray.shutdown()


def test_a_ray_cluster_gives_the_same_bytes_as_this_machine(ray_cluster, tmp_path):
    folder = photos(tmp_path / "in", 3, damaged=True)
    made = run_dreamscope(
        "batch", "dream", folder, "-o", tmp_path / "ray", "--ray", ray_cluster, *TOY_FLAGS, env={"PYTHONPATH": TESTS}
    )
    assert made.returncode == 1 and "2 CPUs" in made.stderr and "3 made, 1 failed" in made.stderr, made.stderr
    summary = json.loads((tmp_path / "ray" / "batch.json").read_text())
    assert summary["engine"].startswith(f"Ray ({ray_cluster}") and summary["failures"][0]["item"] == "damaged.jpg"
    run(batch.folder_jobs(folder, DreamSettings(**TOY), tmp_path / "here"), batch.InlineEngine())  # = local processes' (above)
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "here") and len(outputs(tmp_path / "ray")) == 3


def test_a_ray_worker_killed_mid_item_is_retried_by_ray(ray_cluster, tmp_path):
    folder = photos(tmp_path / "in", 3)
    marks = tmp_path / "marks"
    marks.mkdir()
    settings = DreamSettings(**{**TOY, "steps": 30})
    stop = threading.Event()
    killed = kill_first_worker(marks, stop)
    result = run(marked(batch.folder_jobs(folder, settings, tmp_path / "out"), marks), batch.RayEngine(ray_cluster))
    stop.set()
    assert len(killed) == 1 and [o.status for o in result.outcomes] == ["done"] * 3, result.outcomes
    assert killed[0] not in {int(o.worker.split(":")[1]) for o in result.outcomes}
    run(batch.folder_jobs(folder, settings, tmp_path / "ref"), batch.InlineEngine())
    assert outputs(tmp_path / "out") == outputs(tmp_path / "ref")


def test_an_interrupted_ray_batch_resumes_with_only_what_is_missing(ray_cluster, tmp_path):
    folder = photos(tmp_path / "in", 6)
    out = tmp_path / "out"
    argv = [
        *INTERRUPTIBLE,
        "-m",
        "dreamscope",
        "batch",
        "dream",
        str(folder),
        "-o",
        str(out),
        "--ray",
        ray_cluster,
        "--model",
        "toy_models:factory",
        "--octaves",
        "2",
        "--steps",
        "25",
    ]
    proc = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": TESTS}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(outputs(out) if out.exists() else {}) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "error: interrupted; the outputs finished so far are kept" in err, err
    time.sleep(1.0)  # the cluster stops the job's tasks when its driver has gone; one may finish its picture first
    kept = {name: (out / name).stat().st_mtime_ns for name in outputs(out)}
    assert 2 <= len(kept) < 6
    summary = json.loads((out / "batch.json").read_text())
    # A file finishes a moment before its worker reports it, and items that finished while the driver stopped are
    # complete files, kept, though the summary did not see them.
    assert summary["interrupted"] and summary["done"] <= len(kept) and summary["not run"] == 6 - summary["done"]
    settings = DreamSettings(model="toy_models:factory", octaves=2, steps=25)  # the same batch, from this driver
    again = run(batch.folder_jobs(folder, settings, out), batch.RayEngine(ray_cluster), out / "batch.json")
    assert (again.count("skipped"), again.count("done")) == (len(kept), 6 - len(kept))
    assert all((out / name).stat().st_mtime_ns == stamp for name, stamp in kept.items()) and len(outputs(out)) == 6
    assert not list(out.rglob(".*.part"))


def test_probe_reports_are_folders_that_a_rerun_recognises(tmp_path):
    folder = photos(tmp_path / "in", 2)
    settings = ProbeSettings(
        model="toy_models:factory", layers="features.2", channels=1, octaves=1, steps=2, vis_size=64, vis_steps=2
    )
    out = tmp_path / "reports"
    first = run(batch.folder_jobs(folder, settings, out), batch.InlineEngine())
    assert (
        first.count("done") == 2 and (out / "cat0" / "index.html").is_file() and (out / "more" / "cat1" / "sheet.png").is_file()
    )
    again = run(batch.folder_jobs(folder, settings, out), batch.InlineEngine())
    assert again.count("skipped") == 2
