"""The optimization core, torch only and no files: objectives (what to maximize), image parameterizations,
random transforms, taps that read activations, and the render loops that tie them together."""
