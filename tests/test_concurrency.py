"""One loaded model shared by threads, and several processes side by side: each gets exactly the bytes it
would get alone, and no call sees another's activations."""

from __future__ import annotations

import io
import threading

import pytest

import dreamscope as ds
from conftest import chelsea, run_dreamscope


def png(picture) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_threads_sharing_one_model_get_the_bytes_each_gets_alone(model):
    cat, other = chelsea((160, 120)), chelsea((160, 120)).rotate(180)
    work = {
        "dream": lambda: [ds.dream(cat, model=model, octaves=2, steps=3, seed=1)],
        "dream-deep": lambda: [ds.dream(other, model=model, layer="stage5.2=1,stage3.1=0.5", octaves=2, steps=3, seed=2)],
        "dream-guided": lambda: [ds.dream(cat, model=model, layer="stage4.2", guide=other, octaves=1, steps=3, seed=3)],
        "visualize": lambda: ds.visualize("goldfish", model=model, size=96, steps=12, samples=2, seed=4),
    }
    alone = {name: [png(p) for p in job()] for name, job in work.items()}
    together, errors = {}, []

    def run(name):
        try:
            together[name] = [png(p) for p in work[name]()]
        except Exception as exc:
            errors.append((name, exc))

    for _ in range(2):  # twice: the interleaving differs from run to run
        threads = [threading.Thread(target=run, args=(name,)) for name in work]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        for name in work:
            assert together[name] == alone[name], f"{name} differs when run beside the others"


@pytest.mark.slow
def test_processes_side_by_side_get_the_bytes_each_gets_alone(tmp_path, run_cli_many):
    chelsea((160, 120)).save(tmp_path / "photo.png")
    args = {"a": ["--layer", "stage4.2", "--seed", "1"], "b": ["--layer", "stage3.1", "--channels", "strongest:4", "--seed", "2"]}
    quick = ["--octaves", "2", "--steps", "3", "-q"]
    for name, extra in args.items():  # one after the other
        result = run_dreamscope("dream", "photo.png", "-o", f"alone_{name}.png", *extra, *quick, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    side_by_side = run_cli_many(
        [(["dream", "photo.png", "-o", f"both_{name}.png", *extra, *quick], tmp_path) for name, extra in args.items()], workers=2
    )
    assert all(result.returncode == 0 for result in side_by_side), [r.stderr for r in side_by_side]
    for name in args:
        assert (tmp_path / f"both_{name}.png").read_bytes() == (tmp_path / f"alone_{name}.png").read_bytes()
