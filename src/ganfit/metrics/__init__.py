"""Metrics (a leaf package under the applications): SWD of texture sets, shape error, landmark NME, photometric,
appearance and identity scores. Imported by training, fitting and the evaluations; imports none of them."""
