"""Compare settings' class pictures over several seeds, class by class: is a difference more than the noise?

One run's figures move with the seed: the median similarity of the same 48 classes at the same settings spanned
0.502-0.532 over four seeds (docs/benchmarks.md), as wide as most differences between settings. So each setting
here is a GROUP of `quality_visualize.py --json` files (one per seed; a peer may have one), and settings are
compared on what the seeds share: each class's similarity averaged over a group's seeds, then the difference
from the first group class by class (paired: a class that is hard for one is hard for the other), with its
standard error over the classes. A difference under two standard errors is noise at this many classes and seeds.

    python benchmarks/compare_quality.py now=docs/quality_confident.json,docs/quality_confident_seed1.json \\
        150=docs/quality_crop.json,docs/quality_crop_seed1.json faccent=docs/quality_faccent48.json:faccent

A file is `PATH` (its maker `fft`) or `PATH:MAKER`. Only classes every file has are compared. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

VIEWS = ("picture", "mirror", "crop")


def load(spec: str) -> dict[str, dict]:
    """{class name: its row} from `PATH` or `PATH:MAKER` (a quality_visualize.py --json file)."""
    path, _, maker = spec.partition(":")
    makers = json.loads(Path(path).read_text())["makers"]
    maker = maker or "fft"
    if maker not in makers:
        raise SystemExit(f"error: {path} has no maker {maker!r}; it has {', '.join(makers)}")
    return {row["class"]: row for row in makers[maker]["classes"]}


def similarity(row: dict) -> float:
    return row["plausibility"]["similarity"]


def named_everywhere(row: dict) -> bool:
    return all(row["views"][view]["top1"] for view in VIEWS)


def summary(runs: list[dict[str, dict]], classes: list[str]) -> dict:
    """What a group's seeds say together, on `classes`."""
    per_class = [statistics.fmean(similarity(run[name]) for run in runs) for name in classes]
    return {
        "seeds": len(runs),
        # each seed's own count, so a target "per run" can be read off every seed
        "top1": [[sum(run[name]["views"][view]["top1"] for name in classes) for view in VIEWS] for run in runs],
        "all_views": [sum(named_everywhere(run[name]) for name in classes) for run in runs],
        "never_all_views": [name for name in classes if not any(named_everywhere(run[name]) for run in runs)],
        "median_similarity_by_seed": [statistics.median(similarity(run[name]) for name in classes) for run in runs],
        "median_similarity": statistics.median(per_class),  # of each class's mean over the seeds
        "mean_similarity": statistics.fmean(per_class),
        "median_rank": statistics.median(
            statistics.median(run[name]["plausibility"]["rank"] for run in runs) for name in classes
        ),
        "per_class": per_class,
    }


def paired(a: list[float], b: list[float]) -> dict:
    """b - a, class by class: the mean difference, its standard error over the classes, and how many rose."""
    differences = [y - x for x, y in zip(a, b)]
    error = statistics.stdev(differences) / len(differences) ** 0.5 if len(differences) > 1 else float("nan")
    return {"difference": statistics.fmean(differences), "error": error, "higher": sum(d > 0 for d in differences)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="+", metavar="NAME=FILE[:MAKER],...", help="a setting and its runs (one per seed)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    groups, inputs = {}, set()
    for text in args.groups:
        name, sep, files = text.partition("=")
        if not sep or not files:
            parser.error(f"a group is NAME=FILE[,FILE...], got {text!r}")
        groups[name] = [load(spec) for spec in files.split(",")]
        inputs.update(Path(spec.partition(":")[0]).resolve() for spec in files.split(","))
    if args.json and args.json.resolve() in inputs:
        parser.error(f"--json {args.json} is one of the runs compared: write the comparison elsewhere")
    classes = sorted(set.intersection(*(set(run) for runs in groups.values() for run in runs)))
    if not classes:
        parser.error("the files share no class")
    results = {name: summary(runs, classes) for name, runs in groups.items()}
    first = next(iter(results))
    print(f"{len(classes)} classes; similarity differences are against {first}, class by class (mean over each group's seeds)\n")
    print(
        "| setting | seeds | top-1 per seed (picture, mirror, crop) | all 3 views per seed | median similarity per seed "
        "| median of the classes' mean similarity | mean | median rank | difference from the first (± standard error) "
        "| classes nearer |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, result in results.items():
        versus = paired(results[first]["per_class"], result["per_class"])
        result["versus_first"] = versus
        print(
            f"| {name} | {result['seeds']} | {'; '.join(', '.join(map(str, counts)) for counts in result['top1'])} "
            f"| {', '.join(map(str, result['all_views']))} "
            f"| {', '.join(f'{m:.3f}' for m in result['median_similarity_by_seed'])} "
            f"| {result['median_similarity']:.3f} | {result['mean_similarity']:.3f} | {result['median_rank']:g} "
            + (
                f"| {versus['difference']:+.4f} ± {versus['error']:.4f} | {versus['higher']} of {len(classes)} |"
                if name != first
                else "| | |"
            )
        )
    for name, result in results.items():
        if result["never_all_views"]:
            print(f"\n{name}: never named on all three views on any seed: {', '.join(result['never_all_views'])}")
    if args.json:
        partial = args.json.with_name(args.json.name + ".partial")  # whole or not at all
        partial.write_text(json.dumps({"groups": args.groups, "classes": classes, "results": results}, indent=1))
        partial.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
