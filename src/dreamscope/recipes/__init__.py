"""Recipes: each a short composition of parameters, objectives, transforms and the render loop."""
