"""Work: recipes as jobs (checked once, run, written with their record), the catalogue of recipes every front end
reads, batch engines (this machine's processes or Ray), resuming and redoing."""
