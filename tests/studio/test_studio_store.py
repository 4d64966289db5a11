"""The studio's database: jobs queue in order, each state change is atomic, a crash's running jobs are recovered,
and one store serves many threads at once. Real SQLite files, no model."""

from __future__ import annotations

import sqlite3
import threading

import pytest

pytest.importorskip("fastapi", reason="the studio extra is not installed: pip install -e '.[studio]'")

from dreamscope.errors import DreamscopeError
from dreamscope.studio.store import DataFolder, Store, UploadRow, empty

SETTINGS = {"recipe": "dream", "steps": 2}


@pytest.fixture
def store(tmp_path):
    made = Store(tmp_path / "studio.sqlite3")
    yield made
    made.close()


def test_jobs_are_listed_newest_first_and_filtered_by_state(store):
    first = store.add_job("dream", SETTINGS, {"input": "a" * 32})
    second = store.add_job("zoom", {"recipe": "zoom"}, {}, parent=first.id, resume=True)
    assert [job.id for job in store.jobs()] == [second.id, first.id]
    assert store.job(first.id).inputs == {"input": "a" * 32} and store.job(first.id).settings == SETTINGS
    again = store.job(second.id)
    assert again.parent == first.id and again.resume and again.state == "queued" and again.attempts == 0
    assert len(first.id) == 12 and int(first.id, 16) >= 0
    store.claim()
    assert [job.id for job in store.jobs("running")] == [first.id]
    assert [job.id for job in store.jobs("queued")] == [second.id]
    assert store.job("0" * 12) is None


def test_claim_takes_the_oldest_queued_job_once_even_from_many_threads(store):
    made = [store.add_job("dream", SETTINGS, {}).id for _ in range(40)]
    claimed, errors = [], []

    def claim_all():
        try:
            while (job := store.claim()) is not None:
                claimed.append(job.id)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim_all) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(claimed) == sorted(made) and len(set(claimed)) == len(made)
    running = store.job(made[0])
    assert running.state == "running" and running.attempts == 1 and running.started is not None


def test_the_queue_limit_holds_even_when_many_threads_add_jobs_at_once(store):
    store.add_job("dream", SETTINGS, {})
    store.claim()  # a running job does not count: only those waiting
    added = []

    def add_many():
        for _ in range(10):
            added.append(store.add_job("dream", SETTINGS, {}, most_queued=12))

    threads = [threading.Thread(target=add_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.queued() == 12 and sum(job is not None for job in added) == 12 and len(added) == 40
    assert store.add_job("dream", SETTINGS, {}) is not None  # no limit named: the caller's choice


def test_uploads_stored_are_counted_with_their_bytes(store):
    assert store.uploads_stored() == (0, 0)
    for number, size in enumerate((1_000, 2_500)):
        store.add_upload(UploadRow(f"{number:032x}", "picture", "a.png", f"{number:032x}.png", 4, 3, 1, True, size))
    assert store.uploads_stored() == (2, 3_500)


def test_the_queue_order_is_the_order_of_submission(store):
    ids = [store.add_job("dream", SETTINGS, {}).id for _ in range(5)]
    assert [store.claim().id for _ in ids] == ids
    assert store.claim() is None


def test_state_changes_apply_only_from_the_state_they_expect(store):
    job = store.add_job("dream", SETTINGS, {})
    assert not store.progress(job.id, 0.5, "step 1 of 2", 1.0)  # not running yet
    store.claim()
    assert store.progress(job.id, 0.5, "octave 1 of 2", float("nan"))
    row = store.job(job.id)
    assert (row.fraction, row.stage, row.loss) == (0.5, "octave 1 of 2", None)  # NaN is not a JSON number
    assert store.cancel(job.id)
    assert not store.finish(job.id, "done", output="dream.png")  # cancelled meanwhile: stays cancelled
    assert store.job(job.id).state == "cancelled" and store.job(job.id).output is None
    assert not store.cancel(job.id)  # already ended
    other = store.add_job("dream", SETTINGS, {})
    store.claim()
    assert store.finish(other.id, "done", output="dream.png")
    done = store.job(other.id)
    assert done.state == "done" and done.fraction == 1 and done.finished >= done.started
    assert store.delete(other.id) and store.job(other.id) is None and not store.delete(other.id)


def test_recover_puts_running_jobs_back_in_the_queue(tmp_path):
    path = tmp_path / "studio.sqlite3"
    first = Store(path)
    running = first.add_job("dream", SETTINGS, {})
    waiting = first.add_job("dream", SETTINGS, {})
    first.claim()
    first.progress(running.id, 0.4, "step 4 of 10", 2.0)
    # no close(): as if the server were killed; a second store opens the same file
    second = Store(path)
    assert second.recover() == [running.id]
    row = second.job(running.id)
    assert (row.state, row.fraction, row.stage, row.started, row.attempts) == ("queued", 0.0, "", None, 1)
    assert second.claim().id == running.id  # it keeps its place at the front
    assert second.job(waiting.id).state == "queued"
    second.close()
    first.close()


def test_the_database_is_in_wal_mode_and_refuses_a_newer_layout(tmp_path, store):
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(DreamscopeError, match="newer dreamscope"):
        Store(newer)


def test_uploads_round_trip(store):
    row = UploadRow("f" * 32, "video", "clip.mp4", "f" * 32 + ".mp4", 96, 64, 12, False, 1234)
    store.add_upload(row)
    assert store.upload("f" * 32) == row
    assert row.to_json() == {"id": "f" * 32, "kind": "video", "name": "clip.mp4", "width": 96, "height": 64, "frames": 12}
    assert store.upload("e" * 32) is None


def test_many_threads_read_and_write_at_once(store):
    errors = []

    def work():
        try:
            for _ in range(30):
                job = store.add_job("dream", SETTINGS, {})
                assert store.job(job.id).id == job.id
                store.jobs()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(store.jobs()) == 240


def test_data_folder_layout_and_emptying(tmp_path):
    data = DataFolder(tmp_path / "data").make()
    assert data.uploads.is_dir() and data.jobs.is_dir() and data.database.parent == data.root
    folder = data.job("abc")
    (folder / "report" / "dreams").mkdir(parents=True)
    (folder / "report" / "dreams" / "01-stem.jpg").write_bytes(b"x")
    (folder / ".dream.png.1234.part").write_bytes(b"x")
    empty(folder)
    assert folder.is_dir() and not list(folder.iterdir())
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(DreamscopeError, match="--data"):
        DataFolder(blocked / "studio").make()


def test_notes_are_kept_for_a_running_job_and_start_afresh_when_it_runs_again(store):
    job = store.add_job("zoom", {"recipe": "zoom"}, {})
    assert not store.add_note(job.id, "too early")  # only a running job says things
    store.claim()
    assert store.add_note(job.id, "the sound is dropped") and store.add_note(job.id, "2 frames, 64x48, 24 fps")
    assert store.job(job.id).notes == ("the sound is dropped", "2 frames, 64x48, 24 fps")
    assert store.requeue(job.id) and store.claim().notes == ()  # a re-run says its own


def test_a_database_of_the_first_layout_gains_the_notes_column(tmp_path):
    path = tmp_path / "studio.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, recipe TEXT NOT NULL,
        settings TEXT NOT NULL, inputs TEXT NOT NULL, state TEXT NOT NULL, created REAL NOT NULL, started REAL, finished REAL,
        fraction REAL NOT NULL DEFAULT 0, stage TEXT NOT NULL DEFAULT '', loss REAL, error TEXT, output TEXT, parent TEXT,
        attempts INTEGER NOT NULL DEFAULT 0, resume INTEGER NOT NULL DEFAULT 0);
        INSERT INTO jobs (id, recipe, settings, inputs, state, created) VALUES ('abcdefabcdef', 'dream', '{}', '{}', 'done', 1.0);
        PRAGMA user_version=1;""")
    old.close()
    store = Store(path)
    try:
        assert store.job("abcdefabcdef").notes == ()
    finally:
        store.close()
