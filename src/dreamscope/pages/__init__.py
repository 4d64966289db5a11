"""Every page and contact sheet dreamscope writes: a recipe returns data, and the job that asked for it writes
its page here (the probe report, the activation atlas, the microscope's site, the patch experiment's result,
contact sheets of pictures)."""
