"""Static HTML reports of ganfit's outputs (they open from disk, offline): the fit report with a 3D view per photo
(:func:`write_fit_report`), results tables (:func:`write_table_report`) and contact sheets
(:func:`write_contact_sheet`). ``python -m ganfit.report OUT`` writes ``OUT/index.html`` for a finished fit job.

This package reads output folders and files only; it imports no fitting code (W&B media: ``wandb_media``).
"""

from ganfit.report.fit_report import write_fit_report
from ganfit.report.tables import image_files, write_contact_sheet, write_table_report

__all__ = ["image_files", "write_contact_sheet", "write_fit_report", "write_table_report"]
