"""dreamscope: look inside image networks by making them dream.

The public API, imported on first use: `import dreamscope` stays quick (no torch yet), so the command line
answers --help at once and sets the thread policy before torch starts its thread pool.
"""

from __future__ import annotations

import importlib

from . import runtime

runtime.prepare_environment()  # before torch is imported anywhere

__version__ = "0.2.0"

_EXPORTS = {
    "DreamscopeError": "errors", "SettingsError": "errors",
    "DEFAULT_MODEL": "models", "REGISTRY": "models", "LoadedModel": "models", "imagenet_labels": "models",
    "list_layers": "models", "load_model": "models", "resolve_class": "models", "wrap_model": "models",
    "Objective": "objectives", "channel": "objectives", "class_logit": "objectives", "direction": "objectives",
    "diversity": "objectives", "guided": "objectives", "layer_l2": "objectives", "neuron": "objectives",
    "total_variation": "objectives",
    "Settings": "settings", "DreamSettings": "settings", "VisualizeSettings": "settings", "ZoomSettings": "settings",
    "MorphSettings": "settings", "VideoSettings": "settings", "ProbeSettings": "settings", "ClassifySettings": "settings",
    "ExemplarsSettings": "settings",
    "Event": "events", "Stage": "events", "Run": "events",
    "Record": "provenance", "read_record": "provenance:read",
    "Job": "jobs", "run_job": "jobs:run", "redo": "jobs", "resume_zoom": "jobs",
    "Prediction": "recipes.classify", "classify": "recipes.classify",
    "dream": "recipes.dream", "dream_iter": "recipes.dream",
    "visualize": "recipes.visualize", "visualize_iter": "recipes.visualize",
    "zoom_iter": "recipes.zoom", "morph_iter": "recipes.morph", "video_iter": "recipes.video",
    "probe": "recipes.probe", "probe_iter": "recipes.probe",
    "AtlasSettings": "settings", "PatchSettings": "settings",
    "atlas": "recipes.atlas", "atlas_iter": "recipes.atlas", "collect": "recipes.atlas", "collect_iter": "recipes.atlas",
    "Collection": "recipes.atlas", "patch_experiment": "recipes.patch", "patch_iter": "recipes.patch",
    "exemplars": "recipes.exemplars", "exemplars_iter": "recipes.exemplars", "Exemplar": "recipes.exemplars",
    "save": "provenance:save", "set_threads": "runtime:configure",
    "MicroscopeSettings": "settings", "microscope": "recipes.microscope", "microscope_iter": "recipes.microscope",
    "run_batch": "batch", "folder_jobs": "batch", "engine_for": "batch", "LocalEngine": "batch", "RayEngine": "batch",
    "InlineEngine": "batch",
    "feature_distance": "objectives", "score": "quality", "judge_for": "quality", "Score": "quality",
    "colourfulness": "colour", "saturation": "colour", "Accentuation": "recipes.accentuate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dreamscope' has no attribute {name!r}")
    module, _, attribute = _EXPORTS[name].partition(":")
    value = getattr(importlib.import_module(f".{module}", __name__), attribute or name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
