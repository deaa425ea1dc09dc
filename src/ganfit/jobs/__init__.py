"""The photo-job engine shared by ``fit.py``, the dataset builder and ``eval.photos``: collect -> detect -> prepare
-> batch -> process -> outcomes, with skip/resume, failure isolation, sharding over processes and machines
(Lightning Fabric), and one summary format. :mod:`ganfit.jobs.fit_job` is fit.py's job built on it."""
